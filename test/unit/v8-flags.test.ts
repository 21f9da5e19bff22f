// Unit: the V8 flags of the daemon (etc/systemd units, bin/vigil). bin/vigil
// takes VIGIL_V8_FLAGS from an allow-list and refuses anything else with
// exit 2 (a garbage-collector flag set in a running V8 can abort it), and
// the units only set flags that bin/vigil and NODE_OPTIONS accept, so a
// unit never ships a daemon that refuses to start.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, ROOT } from '../support/vigil';

function vigil(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const base = { ...process.env };
  delete base.NODE_OPTIONS;
  delete base.VIGIL_V8_FLAGS;
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...base, ...env }, timeout: 30_000 });
}

/** `Environment=NAME=value` or `Environment="NAME=value"` of a unit. */
function unitEnv(unit: string, name: string): string | undefined {
  const m = new RegExp(`^Environment=("?)${name}=(.*)\\1$`, 'm').exec(fs.readFileSync(path.join(ROOT, 'etc', 'systemd', unit), 'utf8'));
  return m?.[2];
}

t.test('VIGIL_V8_FLAGS: the allowed flags run, any other is refused with exit 2', async (t) => {
  const ok = vigil(['--version'], { VIGIL_V8_FLAGS: '--no-opt --no-sparkplug' });
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /^vigil \d/);
  const bad = vigil(['--version'], { VIGIL_V8_FLAGS: '--no-opt --single-threaded-gc' });
  t.equal(bad.status, 2, 'refused');
  t.match(bad.stderr, /VIGIL_V8_FLAGS: '--single-threaded-gc' is not accepted \(expected some of --no-opt --no-sparkplug\)/);
  t.equal(bad.stdout, '', 'nothing ran');
});

t.test('the units set flags the daemon starts with', async (t) => {
  for (const unit of ['vigil.service', 'vigil@.service']) {
    const nodeOptions = unitEnv(unit, 'NODE_OPTIONS');
    const v8Flags = unitEnv(unit, 'VIGIL_V8_FLAGS');
    t.equal(nodeOptions, '--max-semi-space-size=1', `${unit}: a 1 MiB young generation`);
    t.equal(v8Flags, '--no-opt --no-sparkplug', `${unit}: no optimizing or baseline compiler`);
    const r = vigil(['--version'], { NODE_OPTIONS: nodeOptions!, VIGIL_V8_FLAGS: v8Flags! });
    t.equal(r.status, 0, `${unit}: vigil starts with them (${r.stderr.trim()})`);
  }
});
