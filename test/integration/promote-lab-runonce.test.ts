// Three sites A, B, W (W runs the Consul TEST DOUBLE): two `vigil promote run-once` started
// together in site A (a timer setup firing twice) → one exits 3 "busy" with one line, the
// other decides against the witness and promotes once; B, started afterwards, does not.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { BIN, START_MS } from '../support/vigil';
import { never, startScenario, TIMING, until } from '../support/promote-sites';

t.test('two concurrent run-once in one site: one exits 3 busy, the other promotes once', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'runonce');
  const file = sc.configFile('a');
  const runs = [0, 1].map(() => {
    const p = sc.lab.site('a').spawn([process.execPath, BIN, 'promote', 'run-once', '-c', file]);
    const r = { out: '', err: '', code: undefined as number | null | undefined };
    p.stdout!.on('data', (c: Buffer) => { r.out += c.toString(); });
    p.stderr!.on('data', (c: Buffer) => { r.err += c.toString(); });
    p.on('exit', (code) => { r.code = code; });
    return r;
  });
  const said = () => runs.map((r, i) => `--- run-once ${i} (exit ${r.code}):\n${r.out}${r.err}`).join('\n');
  await until(sc, () => runs.some((r) => r.code !== undefined), START_MS, `one run-once exiting (the loser of the lock)\n${said()}`);
  const loser = runs.find((r) => r.code !== undefined)!;
  const winner = runs.find((r) => r !== loser)!;
  t.equal(loser.code, 3, 'the second run-once exits 3', { said: said() });
  t.match(loser.err, /busy/);
  t.equal(loser.err.trim().split('\n').length, 1, 'one line');
  await until(sc, () => sc.whats('a').includes('p2'), 10 * TIMING.checkMs + 5000, `the winner's promote steps (the lease is free)\n${said()}`);
  t.equal(winner.code, undefined, 'the winner stays resident while it holds the lease');
  sc.start('b');
  await until(sc, () => /promote check/.test(sc.logs('b')), 10_000, "B's first check");
  await never(sc, () => sc.whats('b').length > 0, 3 * TIMING.renewMs, "B's promote step while A's run-once holds the lease");
  t.same(sc.whats('a'), ['p1', 'p2'], 'A promoted once');
});
