// Unit: IPv6 HA addresses — strict parsing and RFC 5952 text (util/ip6), `vip.address`
// in the config, and the IP file mixing both families with errors that name the line.
import t from 'tap';
import { ConfigError } from '../../src/errors';
import { parseConfigText } from '../../src/config/load';
import { canonicalIPv6, formatIPv6, ipv6Bytes, ipv6HaProblem, parseAnyCidr } from '../../src/util/ip6';
import { parseIpFile } from '../../src/roles/vip/ipfile';
import { batchArgv, parseVzlistIps } from '../../src/actions/vzctl';

t.test('IPv6 text forms parse to 16 bytes and print in RFC 5952 form', async (t) => {
  const cases: Array<[string, string]> = [
    ['fd00::1', 'fd00::1'],
    ['FD00:0000:0000:0000:0000:0000:0000:0001', 'fd00::1'],
    ['fd00:0:0:1::', 'fd00:0:0:1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs (RFC 5952 §4.2.3)
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not shortened (§4.2.2)
    ['::', '::'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
    ['fd12:3456:789a:1::100', 'fd12:3456:789a:1::100'],
  ];
  for (const [text, canon] of cases) t.equal(canonicalIPv6(text), canon, text);
  for (const bad of ['', ':', ':::', 'fd00::1::2', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'fd00::g', 'fd00::12345', 'fd00::1%eth0', '10.0.0.1', 'fd00::1.2.3', '::ffff:10.0.0.256']) {
    t.equal(ipv6Bytes(bad), undefined, `refused: ${JSON.stringify(bad)}`);
  }
  t.same([...formatIPv6(Buffer.from('fe800000000000000000000000000001', 'hex'))].join(''), 'fe80::1');
});

t.test('either family with a prefix; IPv6 canonical; prefixes bounded per family', async (t) => {
  t.same(parseAnyCidr('10.0.0.5/24'), { address: '10.0.0.5', prefix: 24 });
  t.same(parseAnyCidr('10.0.0.5'), { address: '10.0.0.5', prefix: 32 });
  t.same(parseAnyCidr('fd00:0::5/64'), { address: 'fd00::5', prefix: 64 });
  t.same(parseAnyCidr('fd00::5'), { address: 'fd00::5', prefix: 128 });
  t.same(parseAnyCidr('fd00::5/128'), { address: 'fd00::5', prefix: 128 });
  t.equal(parseAnyCidr('fd00::5/129'), undefined);
  t.equal(parseAnyCidr('fd00::5/064'), undefined);
  t.equal(parseAnyCidr('10.0.0.5/33'), undefined);
});

t.test('HA rules: no link-local, multicast, v4-mapped, unspecified or loopback', async (t) => {
  t.equal(ipv6HaProblem('fd00::1'), undefined);
  t.equal(ipv6HaProblem('2001:db8::1'), undefined);
  t.match(ipv6HaProblem('fe80::1'), /link-local/);
  t.match(ipv6HaProblem('febf::1'), /link-local/);
  t.equal(ipv6HaProblem('fec0::1'), undefined, 'fec0::/10 is not link-local');
  t.match(ipv6HaProblem('ff02::1'), /multicast/);
  t.match(ipv6HaProblem('::ffff:10.0.0.1'), /IPv4-mapped/);
  t.match(ipv6HaProblem('::'), /unspecified/);
  t.match(ipv6HaProblem('::1'), /loopback/);
});

function errorsOf(text: string): string[] {
  try {
    parseConfigText(text, '/etc/vigil/test.yml');
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return (e.detail?.errors as string[]) ?? [e.message];
  }
  return [];
}

t.test('vip.address takes IPv6 with a prefix (default /128) and refuses non-HA addresses by name', async (t) => {
  const cfg = parseConfigText('vip:\n  interface: eth0\n  address: fd00:0:0::100/64\n', 'rel.yml');
  t.same(cfg.vip!.address, { address: 'fd00::100', prefix: 64 });
  t.same(parseConfigText('vip:\n  interface: eth0\n  address: "fd00::100"\n', 'rel.yml').vip!.address, { address: 'fd00::100', prefix: 128 });
  t.same(parseConfigText('vip:\n  interface: eth0\n  address: 10.0.0.100/24\n', 'rel.yml').vip!.address, { address: '10.0.0.100', prefix: 24 });
  for (const [addr, why] of [['fe80::100', /link-local/], ['ff02::100', /multicast/], ['"::ffff:10.0.0.1"', /IPv4-mapped/], ['fd00::100/129', /not an IPv6 address/], ['fd00:::1', /not an IPv6 address/]] as const) {
    const errs = errorsOf(`vip:\n  interface: eth0\n  address: ${addr}\n`);
    t.equal(errs.length, 1, addr);
    t.match(errs[0], /^\/etc\/vigil\/test\.yml:3: vip\.address: /, `${addr}: names the file, line and key`);
    t.match(errs[0], why, `${addr}: says why`);
  }
});

t.test('IP file: families mixed, canonical duplicates once, bad lines named with their number', async (t) => {
  const r = parseIpFile([
    '# dual stack',
    '10.0.0.10/24',
    'fd00::10/64',
    'fd00:0::10/64   # the same address written longer',
    'fe80::10',
    '10.0.0.11 fd00::11',
    'ff02::1',
    '::ffff:10.0.0.12',
    'fd00::zz',
    '',
    'fd00::12',
  ].join('\n'));
  t.same(r.addresses, [
    { address: '10.0.0.10', prefix: 24 },
    { address: 'fd00::10', prefix: 64 },
    { address: '10.0.0.11', prefix: 32 },
    { address: 'fd00::11', prefix: 128 },
    { address: 'fd00::12', prefix: 128 },
  ]);
  t.same(r.invalid.map((x) => [x.line, x.text]), [[5, 'fe80::10'], [7, 'ff02::1'], [8, '::ffff:10.0.0.12'], [9, 'fd00::zz']]);
  t.match(r.invalid[0]!.reason, /link-local/);
  t.match(r.invalid[1]!.reason, /multicast/);
  t.match(r.invalid[2]!.reason, /IPv4-mapped/);
  t.match(r.invalid[3]!.reason, /not an IPv6 address/);
});

t.test('vzctl backend: vzlist IPv6 tokens are HA addresses in canonical text (vzctl set --ipadd takes IPv6)', async (t) => {
  t.same(parseVzlistIps('10.0.0.1 fd00:0::10/64 fd00::11 fe80::1 ff02::1 fd00::12/129'), {
    addresses: [{ address: '10.0.0.1' }, { address: 'fd00::10', prefix: 64 }, { address: 'fd00::11' }],
    skipped: ['fe80::1', 'ff02::1', 'fd00::12/129'],
  });
  t.same(batchArgv('vzctl', '101', '--ipadd', ['10.0.0.1', 'fd00::10']), [['vzctl', 'set', '101', '--ipadd', '10.0.0.1', '--ipadd', 'fd00::10']]);
});

t.test('vip.announce.routers: IPv6 neighbours, link-local allowed, canonical; multicast and IPv4 refused', async (t) => {
  const cfg = parseConfigText('vip:\n  interface: eth0\n  address: fd00::100/64\n  announce: { routers: ["FE80::1", "fd00:0::1"] }\n', 'rel.yml');
  t.same(cfg.vip!.announce.routers, ['fe80::1', 'fd00::1']);
  t.equal(parseConfigText('vip:\n  interface: eth0\n  address: fd00::100/64\n', 'rel.yml').vip!.announce.routers, undefined, 'none by default');
  for (const [r, why] of [['ff02::2', /multicast/], ['10.0.0.1', /not an IPv6 address/], ['"::"', /unspecified/]] as const) {
    const errs = errorsOf(`vip:\n  interface: eth0\n  address: fd00::100/64\n  announce:\n    routers: [${r}]\n`);
    t.equal(errs.length, 1, r);
    t.match(errs[0], /test\.yml:5: vip\.announce\.routers\[0\]: /, `${r}: names the line and key`);
    t.match(errs[0], why, `${r}: says why`);
  }
});
