/**
 * Layer: role `group`, member driver. The transient hostname plus a marked,
 * managed block in the hosts file (and optionally name servers in
 * resolv.conf). Stop removes exactly the blocks start added, so the files
 * are byte-identical to before (xcatha never removed `nameserver <VIP>`,
 * X-21, and glued its lines together, X-25). The previous hostname is kept
 * in the hosts block's BEGIN line: the state lives in the world, so a
 * crashed run can still be undone.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { runCommand, describeCommand } from '../../../actions/commands';
import type { Effect, HostnameMember, Member, MemberStatus, StepOutcome } from '../types';

const SET_TIMEOUT_MS = 10_000;

async function readOr(p: string, dflt: string | undefined): Promise<string | undefined> {
  try { return await fs.readFile(p, 'utf8'); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENOENT') return dflt; throw e; }
}

/** Write through symlinks, atomically, keeping the file's mode. */
async function writeAtomic(p: string, text: string): Promise<void> {
  const real = await fs.realpath(p).catch(() => p);
  const mode = (await fs.stat(real).catch(() => undefined))?.mode ?? 0o644;
  const tmp = path.join(path.dirname(real), `.${path.basename(real)}.vigil-${process.pid}`);
  await fs.writeFile(tmp, text, { mode: mode & 0o7777 });
  await fs.rename(tmp, real);
}

/** A managed block: `# BEGIN <tag> k=v…` … `# END <tag>`. */
export interface Block { start: number; end: number; attrs: Record<string, string> }

/** Find the block tagged `tag` in `text` (pure). */
export function findBlock(text: string, tag: string): Block | undefined {
  const re = new RegExp(`^# BEGIN ${tag.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?: (.*))?\\n`, 'm');
  const m = re.exec(text);
  if (!m) return undefined;
  const endLine = `# END ${tag}\n`;
  const e = text.indexOf(endLine, m.index);
  if (e < 0) return undefined;
  const attrs = Object.fromEntries((m[1] ?? '').split(' ').filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]));
  return { start: m.index, end: e + endLine.length, attrs };
}

/**
 * Add a block (pure). At the bottom, a missing final newline is added and
 * noted (`nl=1`) so removal restores the exact bytes; at the top, first.
 */
export function addBlock(text: string, tag: string, body: string[], where: 'top' | 'bottom', attrs: Record<string, string> = {}): string {
  const needNl = where === 'bottom' && text.length > 0 && !text.endsWith('\n');
  const a = { ...attrs, ...(needNl ? { nl: '1' } : {}) };
  const head = `# BEGIN ${tag}${Object.keys(a).length ? ` ${Object.entries(a).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}\n`;
  const block = `${head}${body.map((l) => `${l}\n`).join('')}# END ${tag}\n`;
  return where === 'top' ? block + text : text + (needNl ? '\n' : '') + block;
}

/** Remove a block added by {@link addBlock} (pure). */
export function removeBlock(text: string, b: Block): string {
  const start = b.attrs.nl === '1' && text[b.start - 1] === '\n' ? b.start - 1 : b.start;
  return text.slice(0, start) + text.slice(b.end);
}

/** The `hostname` member; `owner` (group/member) tags its blocks. */
export function hostnameMember(c: HostnameMember, owner: string): Member {
  const tag = `vigil ${owner}`;
  const current = async () => (await readOr(c.hostnameFile, ''))!.trim();
  const setName = async (name: string): Promise<StepOutcome> => {
    const argv = [...c.setCommand, name];
    const r = await runCommand(argv, { timeoutMs: SET_TIMEOUT_MS });
    if (!r.ok) return { ok: false, reason: `${describeCommand(argv)}: ${r.spawnError ?? (r.timedOut ? 'timed out' : `exit ${r.code}`)}`, output: (r.stderr || r.stdout).slice(-400) };
    return { ok: true };
  };
  const state = async () => {
    const hosts = (await readOr(c.hostsFile, ''))!;
    const resolv = c.resolvConf ? await readOr(c.resolvConf, '') : undefined;
    return { hosts, hb: findBlock(hosts, tag), resolv, rb: resolv !== undefined ? findBlock(resolv, tag) : undefined, name: await current() };
  };
  return {
    config: c,
    monitorSpawns: false,
    async validate() {
      const out: string[] = [];
      for (const f of [c.hostsFile, c.resolvConf].filter((x): x is string => !!x)) {
        try { await fs.access(path.dirname(f)); } catch { out.push(`${f}: its directory does not exist`); }
      }
      return out;
    },
    async monitor(): Promise<MemberStatus> {
      const s = await state();
      const parts = [!!s.hb, !c.resolvConf || !!s.rb, s.name === c.hostname];
      if (parts.every(Boolean)) return { state: 'running' };
      if (!s.hb && !s.rb) return { state: 'stopped' };
      return { state: 'stopped', detail: `partial: hosts block ${s.hb ? 'present' : 'absent'}, hostname '${s.name}'` };
    },
    async start(): Promise<StepOutcome> {
      const s = await state();
      // The BEGIN line keeps the name to restore; a resumed start keeps the first one.
      if (!s.hb) {
        const line = [c.address!, c.hostname, ...c.aliases].join(' ');
        await writeAtomic(c.hostsFile, addBlock(s.hosts, tag, [line], 'bottom', { previous: s.name || '-' }));
      }
      if (c.resolvConf && !s.rb) await writeAtomic(c.resolvConf, addBlock(s.resolv ?? '', tag, c.nameservers.map((n) => `nameserver ${n}`), 'top'));
      if (s.name !== c.hostname) {
        const r = await setName(c.hostname);
        if (!r.ok) return r;
        if ((await current()) !== c.hostname) return { ok: false, reason: `hostname is '${await current()}' after setting '${c.hostname}'` };
      }
      return { ok: true, detail: `hostname ${c.hostname}` };
    },
    async stop(): Promise<StepOutcome> {
      const s = await state();
      const previous = s.hb?.attrs.previous;
      if (previous && previous !== '-' && s.name === c.hostname && previous !== c.hostname) {
        const r = await setName(previous);
        if (!r.ok) return r;
      }
      if (c.resolvConf && s.rb && s.resolv !== undefined) await writeAtomic(c.resolvConf, removeBlock(s.resolv, s.rb));
      if (s.hb) await writeAtomic(c.hostsFile, removeBlock(s.hosts, s.hb));
      const after = await state();
      if (after.hb || after.rb) return { ok: false, reason: 'managed blocks still present after removal' };
      return { ok: true, detail: previous && previous !== '-' ? `hostname back to ${previous}` : 'blocks removed' };
    },
    plan(op): Effect[] {
      if (op === 'start') {
        return [
          { member: c.name, op: 'writeFile', detail: `${c.hostsFile}: add block '${tag}': ${c.address} ${[c.hostname, ...c.aliases].join(' ')}` },
          ...(c.resolvConf ? [{ member: c.name, op: 'writeFile', detail: `${c.resolvConf}: add block '${tag}': ${c.nameservers.map((n) => `nameserver ${n}`).join(', ')}` }] : []),
          { member: c.name, op: 'runCommand', detail: describeCommand([...c.setCommand, c.hostname]) },
        ];
      }
      return [
        { member: c.name, op: 'runCommand', detail: `${describeCommand(c.setCommand)} <previous hostname>` },
        ...(c.resolvConf ? [{ member: c.name, op: 'writeFile', detail: `${c.resolvConf}: remove block '${tag}'` }] : []),
        { member: c.name, op: 'writeFile', detail: `${c.hostsFile}: remove block '${tag}'` },
      ];
    },
  };
}
