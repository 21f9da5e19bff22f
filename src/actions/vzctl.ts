/**
 * Layer: executor. The container backend of the HA IP role: addresses go
 * into an OpenVZ / Virtuozzo container with `vzctl set CTID --ipadd A
 * --ipadd B …` and come out with `--ipdel`; the container's addresses are
 * read with `vzlist -H -o status,ip CTID` (vzhaipd V-31, without its `| sh`:
 * the argv is built here and run directly, never re-parsed by a shell, V-32).
 *
 * Decisions, each with its reason:
 * - Runtime only, never `--save`: saved addresses would come back on the
 *   next container start on every node at once (two owners of the HA IP).
 * - Bare addresses: venet holds host addresses; the prefix is vigil's own
 *   bookkeeping (it is what the IP file said) and is not passed to vzctl,
 *   which older versions would reject.
 * - Batching: as few calls as the argument limits allow: at most
 *   {@link MAX_ADDRESSES_PER_CALL} addresses and {@link MAX_ARG_BYTES_PER_CALL}
 *   bytes of arguments per call, far below Linux's ARG_MAX (a quarter of the
 *   stack limit, at least 128 KiB, typically 2 MiB, shared with the
 *   environment), so one takeover is one call.
 * - A failed call fails every address in it: vzctl applies a batch
 *   all-or-nothing (it undoes the addresses of a failed batch itself), so
 *   there is nothing to find by retrying one by one. An add stops at the first
 *   failed call (the role rolls back what was added anyway); a removal tries
 *   every call.
 * - An add first lists the container's addresses and skips those already
 *   there: adding a present address fails the whole batch (EADDRINUSE), and
 *   vzctl's undo would then delete the address that was there.
 * - A removal that fails because the container is not running counts as
 *   done: a stopped container holds no runtime addresses (this is the
 *   umount-hook case: the container has stopped before vigil is stopped).
 * - A listing of a container that is not running is an error, not an empty
 *   list: the status comes with the addresses in the same vzlist call, so a
 *   master's reconcile that runs after `vzctl stop` and before the umount
 *   hook keeps its books (what it holds) instead of emptying them, and the
 *   stop that follows removes the same addresses, whichever ran first.
 * - vzlist formats each line in a 4 KiB buffer (vzctl src/vzlist.c), so a
 *   listing of more than about 250 addresses may be cut short. A cut list
 *   would make present addresses look missing, and re-adding them fails a
 *   batch whose undo deletes them; so a listing that long is refused as
 *   unreliable (the add and the reconcile report it) rather than acted on.
 */
import { runCommand, describeCommand, type CommandResult } from './commands';
import type { AddressBackend, AddressBatch } from './addresses';
import { containerStatus, type RunFn } from './container';
import { VigilError } from '../errors';
import type { Logger } from '../log';
import { isIPv4, formatCidr, type Cidr } from '../util/ip';
import { ipv6HaProblem, parseAnyCidr } from '../util/ip6';
import type { VipConfig } from '../roles/vip/config';

/** Addresses per vzctl call at most. */
export const MAX_ADDRESSES_PER_CALL = 4096;
/** Bytes of argv (strings, NULs and pointers) per vzctl call at most. */
export const MAX_ARG_BYTES_PER_CALL = 100 * 1024;
/** A `vzlist -o ip` line this long may have been cut by vzlist's 4 KiB line buffer. */
export const VZLIST_LINE_LIMIT = 4000;

/** The tools and their timeout, read at every call so a reload applies. */
export interface VzTools {
  vzctl: string;
  vzlist: string;
  /** Timeout of each vzctl/vzlist run (vip.command_timeout). */
  timeoutMs: number;
}

/** Options for {@link VzctlAddresses}. */
export interface VzctlOptions {
  /** The CTID the addresses go into. */
  container: string;
  tools: () => VzTools;
  /**
   * The prefix each address should be reported with by `list()` (the HA IP's
   * and the IP file's), since vzlist shows bare addresses. Addresses it does
   * not name get the prefix they were last added with, else /32.
   */
  prefixes?: () => ReadonlyMap<string, number>;
  log?: Logger;
  run?: RunFn;
  maxAddressesPerCall?: number;
  maxArgBytesPerCall?: number;
}

/** One address as `vzlist -o ip` shows it. */
export interface ListedAddress { address: string; prefix?: number }

/**
 * Parse the output of `vzlist -H -o ip CTID`: addresses separated by white
 * space, `-` for none. A token may carry `/N` or `/A.B.C.D` (a netmask).
 * IPv6 addresses that can be HA addresses (the vip role's; `vzctl set
 * --ipadd` takes them as it takes IPv4) come back in canonical text with an
 * optional `/N`; link-local and other non-HA IPv6 addresses, and anything
 * else, are returned in `skipped`.
 */
export function parseVzlistIps(out: string): { addresses: ListedAddress[]; skipped: string[] } {
  const addresses: ListedAddress[] = [];
  const skipped: string[] = [];
  for (const tok of out.split(/\s+/).filter(Boolean)) {
    if (tok === '-') continue;
    const [addr, mask, ...rest] = tok.split('/');
    if (addr && addr.includes(':') && rest.length === 0) {
      const c = parseAnyCidr(tok);
      if (!c || ipv6HaProblem(c.address)) { skipped.push(tok); continue; }
      addresses.push(mask === undefined ? { address: c.address } : c);
      continue;
    }
    if (!addr || !isIPv4(addr) || rest.length > 0) { skipped.push(tok); continue; }
    if (mask === undefined) { addresses.push({ address: addr }); continue; }
    const prefix = /^(3[0-2]|[12]?\d)$/.test(mask) ? Number(mask) : maskPrefix(mask);
    if (prefix === undefined) { skipped.push(tok); continue; }
    addresses.push({ address: addr, prefix });
  }
  return { addresses, skipped };
}

/** The prefix length of a dotted netmask (255.255.255.0 → 24), or undefined. */
function maskPrefix(mask: string): number | undefined {
  if (!isIPv4(mask)) return undefined;
  const n = mask.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  for (let p = 0; p <= 32; p++) {
    if (n === (p === 0 ? 0 : (0xffffffff - (2 ** (32 - p) - 1)))) return p;
  }
  return undefined;
}

/**
 * Split `addresses` into the argv of as few `vzctl set CTID OP A OP B …`
 * calls as the limits allow, in order. Pure: exported for the tests.
 */
export function batchArgv(vzctl: string, container: string, op: '--ipadd' | '--ipdel', addresses: readonly string[],
  limits: { maxAddresses: number; maxBytes: number } = { maxAddresses: MAX_ADDRESSES_PER_CALL, maxBytes: MAX_ARG_BYTES_PER_CALL }): string[][] {
  // execve(2) counts each string with its NUL, plus one pointer per argument.
  const cost = (s: string) => Buffer.byteLength(s) + 1 + 8;
  const base = [vzctl, 'set', container];
  const baseBytes = base.reduce((n, s) => n + cost(s), 0);
  const calls: string[][] = [];
  let cur: string[] = [];
  let bytes = baseBytes;
  let count = 0;
  for (const a of addresses) {
    const add = cost(op) + cost(a);
    if (count > 0 && (count >= limits.maxAddresses || bytes + add > limits.maxBytes)) {
      calls.push([...base, ...cur]);
      cur = [];
      bytes = baseBytes;
      count = 0;
    }
    cur.push(op, a);
    bytes += add;
    count++;
  }
  if (count > 0) calls.push([...base, ...cur]);
  return calls;
}

/** The last line a failed command printed, for the per-address error. */
function failureText(r: CommandResult, timeoutMs: number): string {
  const what = r.spawnError ? `could not start: ${r.spawnError}` : r.timedOut ? `killed after ${timeoutMs} ms timeout` : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  const line = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean).pop();
  return line ? `${what}: ${line}` : what;
}

/** Addresses inside an OpenVZ / Virtuozzo container through vzctl and vzlist. */
export class VzctlAddresses implements AddressBackend {
  private readonly run: RunFn;
  /** The prefix each address was last added with (vzlist does not keep it). */
  private readonly added = new Map<string, number>();

  constructor(private readonly opts: VzctlOptions) {
    this.run = opts.run ?? runCommand;
  }

  /**
   * The container's addresses, with the prefixes vigil knows for them.
   * Throws `ECTNOTRUNNING` (retryable) when the container is not running:
   * its runtime addresses are gone with it, and an empty list would read as
   * "every address missing" to a reconcile.
   */
  async list(): Promise<Cidr[]> {
    const t = this.opts.tools();
    const argv = [t.vzlist, '-H', '-o', 'status,ip', this.opts.container];
    const r = await this.run(argv, { timeoutMs: t.timeoutMs });
    if (!r.ok) throw new VigilError('EVZLIST', `${describeCommand(argv)}: ${failureText(r, t.timeoutMs)}`, { retryable: true });
    const longest = Math.max(0, ...r.stdout.split('\n').map((l) => l.trimEnd().length));
    if (longest >= VZLIST_LINE_LIMIT) {
      throw new VigilError('EVZLISTLONG', `${describeCommand(argv)}: a ${longest}-byte line, at vzlist's 4 KiB line limit: the list may be cut, so it is not used (keep a container below about 250 addresses)`);
    }
    const [status = '', ...ips] = r.stdout.trim().split(/\s+/);
    if (status !== 'running') {
      throw new VigilError('ECTNOTRUNNING', `container ${this.opts.container} is ${status || 'of unknown status'}: its runtime addresses cannot be read or changed`,
        { retryable: true, detail: { container: this.opts.container, status } });
    }
    const { addresses, skipped } = parseVzlistIps(ips.join(' '));
    if (skipped.length > 0) this.opts.log?.debug({ container: this.opts.container, skipped }, 'vzlist: tokens that are not HA addresses skipped');
    const hints = this.opts.prefixes?.() ?? new Map<string, number>();
    return addresses.map((a) => ({ address: a.address, prefix: hints.get(a.address) ?? this.added.get(a.address) ?? a.prefix ?? (a.address.includes(':') ? 128 : 32) }));
  }

  async add(addresses: Cidr[]): Promise<AddressBatch> {
    const out: AddressBatch = { done: [], failed: [] };
    if (addresses.length === 0) return out;
    let present: Set<string>;
    try {
      present = new Set((await this.list()).map((c) => c.address));
    } catch (e) {
      // Without the list, a present address could fail the batch and vzctl's undo delete it.
      const error = `not added: cannot read the container's addresses first (${(e as Error).message})`;
      return { done: [], failed: addresses.map((cidr) => ({ cidr, error })) };
    }
    const todo: Cidr[] = [];
    for (const c of addresses) {
      if (present.has(c.address)) { out.done.push(c); this.added.set(c.address, c.prefix); } else todo.push(c);
    }
    if (out.done.length > 0) this.opts.log?.info({ container: this.opts.container, addresses: out.done.map(formatCidr) }, 'already in the container: not added again');
    let failedBefore: string | undefined;
    for (const batch of this.batches('--ipadd', todo)) {
      if (failedBefore) { out.failed.push(...batch.map((cidr) => ({ cidr, error: `not attempted: ${failedBefore}` }))); continue; }
      const error = await this.call(batch, '--ipadd');
      if (error === undefined) {
        out.done.push(...batch);
        for (const c of batch) this.added.set(c.address, c.prefix);
      } else {
        out.failed.push(...batch.map((cidr) => ({ cidr, error })));
        failedBefore = `an earlier vzctl call failed (${error})`;
      }
    }
    return out;
  }

  async remove(addresses: Cidr[]): Promise<AddressBatch> {
    const out: AddressBatch = { done: [], failed: [] };
    for (const batch of this.batches('--ipdel', addresses)) {
      const error = await this.call(batch, '--ipdel');
      if (error === undefined) out.done.push(...batch);
      else out.failed.push(...batch.map((cidr) => ({ cidr, error })));
    }
    if (out.failed.length > 0) {
      const t = this.opts.tools();
      const st = await containerStatus(t.vzlist, this.opts.container, t.timeoutMs, this.run);
      if ('status' in st && st.status !== 'running') {
        this.opts.log?.info({ container: this.opts.container, status: st.status, addresses: out.failed.map((f) => formatCidr(f.cidr)) },
          'container not running: it holds no runtime addresses, so these count as removed');
        out.done.push(...out.failed.map((f) => f.cidr));
        out.failed = [];
      }
    }
    for (const c of out.done) this.added.delete(c.address);
    return out;
  }

  close(): void {
    // Nothing is held open: every call is its own process.
  }

  private batches(op: '--ipadd' | '--ipdel', addresses: Cidr[]): Cidr[][] {
    const t = this.opts.tools();
    const limits = { maxAddresses: this.opts.maxAddressesPerCall ?? MAX_ADDRESSES_PER_CALL, maxBytes: this.opts.maxArgBytesPerCall ?? MAX_ARG_BYTES_PER_CALL };
    const argvs = batchArgv(t.vzctl, this.opts.container, op, addresses.map((c) => c.address), limits);
    const out: Cidr[][] = [];
    let i = 0;
    for (const argv of argvs) {
      const n = (argv.length - 3) / 2;
      out.push(addresses.slice(i, i + n));
      i += n;
    }
    return out;
  }

  /** One vzctl call; undefined on success, else the error for each of its addresses. */
  private async call(batch: Cidr[], op: '--ipadd' | '--ipdel'): Promise<string | undefined> {
    const t = this.opts.tools();
    const argv = [t.vzctl, 'set', this.opts.container, ...batch.flatMap((c) => [op, c.address])];
    const r = await this.run(argv, { timeoutMs: t.timeoutMs });
    const entry = { container: this.opts.container, op, count: batch.length, exit: r.code, ms: Math.round(r.durationMs), stderr: r.stderr.trim() || undefined };
    if (r.ok) {
      this.opts.log?.info(entry, `vzctl set ${op}: ${batch.length} address(es)`);
      return undefined;
    }
    const error = `${t.vzctl} set ${this.opts.container} ${op}: ${failureText(r, t.timeoutMs)}`;
    this.opts.log?.error(entry, error);
    return error;
  }
}

/**
 * The backend for a `vip` section with `backend: vzctl`, reading the config
 * live (a reload changes vzctl, vzlist and the timeout for the next call).
 * vzlist shows bare addresses, so `list()` gives each the prefix vigil means
 * it with: the HA IP's, then those of `ours()` (the runner's held and
 * desired addresses as `A.B.C.D/N`, desired last so it wins), so reconcile
 * compares like with like and never removes an address over its prefix.
 */
export function vzctlBackendFor(vip: () => VipConfig, ours: () => readonly string[], log?: Logger): VzctlAddresses {
  return new VzctlAddresses({
    container: vip().container!,
    tools: () => ({ vzctl: vip().vzctl, vzlist: vip().vzlist, timeoutMs: vip().commandTimeoutMs }),
    prefixes: () => {
      const m = new Map<string, number>([[vip().address.address, vip().address.prefix]]);
      for (const text of ours()) {
        const c = parseAnyCidr(text);
        if (c) m.set(c.address, c.prefix);
      }
      return m;
    },
    ...(log ? { log } : {}),
  });
}
