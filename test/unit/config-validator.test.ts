// Unit: the config loader uses a validator for the sections a file
// holds, not for every role's (a vip-only daemon's peak RSS, bench/memory.ts),
// and the messages stay those of the whole schema: an unknown key is still
// told every section and the nearest name of one the file does not have.
import t from 'tap';
import { ConfigError } from '../../src/errors';
import { compiledValidators, parseConfigText } from '../../src/config/load';

const FILE = '/etc/vigil/validator.yml';
const VIP = 'vip: { interface: eth0, address: 10.0.0.1/24 }\n';

function errorsOf(text: string): string[] {
  try {
    parseConfigText(text, FILE);
  } catch (e) {
    if (e instanceof ConfigError) return (e.detail as { errors: string[] }).errors;
    throw e;
  }
  return [];
}

t.test('a vip-only file compiles the vip section only; another file its own sections', async (t) => {
  // The sources have no generated validators (the build writes them into
  // dist/, config-generated.test.ts): each one is compiled on first use.
  const cfg = parseConfigText(`node: n1\n${VIP}`, FILE);
  t.equal(cfg.vip?.interface, 'eth0');
  t.same(compiledValidators(), ['file', 'vip'], 'the common keys and the vip section');
  parseConfigText(`node: n1\n${VIP}fence: { agents: [ { name: a, url: "http://127.0.0.1:8500" } ] }\n`, FILE);
  t.same(compiledValidators(), ['file', 'vip', 'fence'], 'a file with two sections: the second one too');
  parseConfigText(`node: n2\n${VIP}`, FILE);
  t.equal(compiledValidators().length, 3, 'the same sections again (a reload): the validators are reused');
});

t.test('messages do not depend on which sections were compiled', async (t) => {
  const typo = errorsOf(`node: n1\n${VIP}fense: {}\n`);
  t.match(typo[0], /:3: fense: unknown key \(did you mean 'fence'\?/, 'the nearest name is a section this file does not have');
  t.match(typo[0], /expected one of: node, pidfile, state_dir, log, metrics, vip, fence, fence_handler, monitor/, 'every section is listed');
  const inner = errorsOf(`node: n1\n${VIP}fence: { agents: [ { name: a, url: "http://127.0.0.1:8500" } ], check_intervall: 5s }\n`);
  t.match(inner.join('\n'), /fence\.check_intervall: unknown key \(did you mean 'check_interval'\?/, 'a present second section is validated in full');
  const wrongType = errorsOf(`node: n1\n${VIP}monitor: 3\n`);
  t.match(wrongType.join('\n'), /monitor: 3 is not a mapping/, 'a present section that is not a mapping');
});
