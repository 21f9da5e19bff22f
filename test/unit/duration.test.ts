import t from 'tap';
import { parseDurationMs, formatDurationMs } from '../../src/util/duration';

t.test('accepted forms', async (t) => {
  t.equal(parseDurationMs('200ms'), 200);
  t.equal(parseDurationMs('1s'), 1000);
  t.equal(parseDurationMs('2m'), 120_000);
  t.equal(parseDurationMs('1h'), 3_600_000);
  t.equal(parseDurationMs('5'), 5000);
  t.equal(parseDurationMs('0.5'), 500);
  t.equal(parseDurationMs(5), 5000);
  t.equal(parseDurationMs(0.2), 200);
});

t.test('rejected forms', async (t) => {
  for (const bad of ['', 'ms', '1 s', '-1s', '1d', '1.s', 'abc', '1e3', null, undefined, {}, -1, NaN, Infinity]) {
    t.equal(parseDurationMs(bad), undefined, `rejects ${JSON.stringify(bad)}`);
  }
});

t.test('format round-trips', async (t) => {
  for (const ms of [50, 200, 1000, 1500, 60_000, 3_600_000]) t.equal(parseDurationMs(formatDurationMs(ms)), ms);
});
