/** The `runtime_publish:` section: defaults, the required consul url, the bounds, the host name. */
import t from 'tap';
import { ConfigError } from '../../../../src/errors';
import { parseConfigText } from '../../../../src/config/load';

const FILE = '/etc/vigil/test.yml';
function errorsOf(text: string): string[] {
  try { parseConfigText(text, FILE); } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.detail?.errors as string[];
  }
  return [];
}

t.test('defaults, and host left to node', async (t) => {
  const cfg = parseConfigText('node: cmp-01\nruntime_publish:\n  consul: {url: "http://127.0.0.1:8500/"}\n', FILE);
  t.same(cfg.runtimePublish, { consul: { url: 'http://127.0.0.1:8500' }, kvPrefix: 'ha_cluster', file: '/etc/vigil/runtime_config.json', intervalMs: 60_000, requestTimeoutMs: 5_000 });
  const full = parseConfigText('node: n\nruntime_publish:\n  consul: {url: "http://127.0.0.1:8501", token_file: /etc/vigil/t, ca_file: /etc/vigil/ca.pem}\n  kv_prefix: os/ha\n  host: compute-07\n  file: /run/rt.json\n  interval: 5s\n  request_timeout: 1s\n', FILE);
  t.same(full.runtimePublish, { consul: { url: 'http://127.0.0.1:8501', tokenFile: '/etc/vigil/t', caFile: '/etc/vigil/ca.pem' }, kvPrefix: 'os/ha', host: 'compute-07', file: '/run/rt.json', intervalMs: 5_000, requestTimeoutMs: 1_000 });
});

t.test('bad input is refused with the key named', async (t) => {
  t.match(errorsOf('node: n\nruntime_publish: {}\n'), [/runtime_publish\.consul: is required but missing/]);
  t.match(errorsOf('node: n\nruntime_publish:\n  consul: {}\n'), [/runtime_publish\.consul\.url: is required but missing/]);
  t.match(errorsOf('node: n\nruntime_publish:\n  consul: {url: "http://127.0.0.1:8500"}\n  interval: 100ms\n'), [/runtime_publish\.interval: '100ms' is out of range/]);
  t.match(errorsOf('node: n\nruntime_publish:\n  consul: {url: "http://127.0.0.1:8500"}\n  host: "a b"\n'), [/runtime_publish\.host: /]);
  t.match(errorsOf('node: n\nruntime_publish:\n  consul: {url: "http://127.0.0.1:8500"}\n  file: rel.json\n'), [/runtime_publish\.file: /]);
  t.match(errorsOf('node: n\nruntime_publish:\n  consul: {url: "http://127.0.0.1:8500"}\n  intervall: 5s\n'), [/runtime_publish\.intervall: unknown key/]);
});
