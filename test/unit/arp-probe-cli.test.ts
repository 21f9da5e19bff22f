// Unit tests of `vigil arp-probe` argument handling: everything that must
// fail (exit 2, one line naming the problem) before any frame is sent.
// The probing itself is tested in test/integration/arp.test.ts. Every case
// names an interface that does not exist, so even a bug here cannot put a
// frame on a real interface of the machine.
import t from 'tap';
import { run, formatReply } from '../../src/cli/arp-probe';
import { decodeArp, buildAnnounceReply } from '../../src/net/arp/codec';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => { stdout += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { stderr += String(s); return true; }) as typeof process.stderr.write;
  try {
    const code = await run(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

t.test('--help', async (t) => {
  const r = await cli(['--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^Usage: vigil arp-probe -I IFACE/);
  t.match(r.stdout, /Exit status: 0 the IP answered, 1 no answer, 2 error/);
  t.equal(r.stderr, '');
});

t.test('bad input exits 2 with one line naming the problem', async (t) => {
  const cases: Array<[string[], string | RegExp]> = [
    [['10.0.0.1'], 'vigil arp-probe: missing -I IFACE (see --help)\n'],
    [['-I', 'vgnosuchif0'], 'vigil arp-probe: missing the IP to probe (see --help)\n'],
    [['-I', 'vgnosuchif0', '10.0.0.1', '10.0.0.2'], 'vigil arp-probe: expected one IP, got 2: 10.0.0.1 10.0.0.2\n'],
    [['-I', 'vgnosuchif0', '10.0.0.256'], "vigil arp-probe: invalid IPv4 address '10.0.0.256'\n"],
    [['-I', 'vgnosuchif0', 'example.org'], "vigil arp-probe: invalid IPv4 address 'example.org'\n"],
    [['-I', 'vgnosuchif0', '--timeout', '1d', '10.0.0.1'], /^vigil arp-probe: --timeout: invalid duration '1d' \(expected a duration such as/],
    [['-I', 'vgnosuchif0', '--interval=-1', '10.0.0.1'], /^vigil arp-probe: --interval: invalid duration '-1'/],
    [['-I', 'vgnosuchif0', '--count', '0', '10.0.0.1'], "vigil arp-probe: --count: expected a whole number from 1 to 9999999, got '0'\n"],
    [['-I', 'vgnosuchif0', '--count', '2.5', '10.0.0.1'], /--count: expected a whole number/],
    [['-I', 'vgnosuchif0', '--source', 'dad', '10.0.0.1'], "vigil arp-probe: --source: expected 'probe' or 'request', got 'dad'\n"],
    [['-I', 'vgnosuchif0', '--sender', '10.0.0.9', '10.0.0.1'], /--sender needs --source request/],
    [['-I', 'vgnosuchif0', '--source', 'request', '--sender', 'x', '10.0.0.1'], "vigil arp-probe: --sender: invalid IPv4 address 'x'\n"],
    [['-I', 'vgnosuchif0', '--bogus', '10.0.0.1'], /^vigil arp-probe: Unknown option '--bogus'/],
  ];
  for (const [args, expected] of cases) {
    const r = await cli(args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    if (typeof expected === 'string') t.equal(r.stderr, expected, args.join(' '));
    else t.match(r.stderr, expected, args.join(' '));
    t.equal(r.stderr.split('\n').length, 2, `${args.join(' ')}: exactly one line`);
    t.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
  }
});

t.test('an unknown interface exits 2 naming it', async (t) => {
  // if_nametoindex fails before any socket exists: no privilege needed, nothing sent.
  const r = await cli(['-I', 'vgnosuchif0', '10.0.0.1']);
  t.equal(r.code, 2);
  t.equal(r.stderr, "vigil arp-probe: no such interface 'vgnosuchif0'\n");
  const long = await cli(['-I', 'x'.repeat(20), '10.0.0.1']);
  t.equal(long.code, 2);
  t.equal(long.stderr, `vigil arp-probe: invalid interface name '${'x'.repeat(20)}'\n`);
});

t.test('reply lines', async (t) => {
  const packet = decodeArp(buildAnnounceReply({ mac: 'aa:bb:cc:dd:ee:ff', ip: '10.1.2.3' }));
  const base = { ip: '10.1.2.3', mac: 'aa:bb:cc:dd:ee:ff', rttMs: 0.2134, seq: 0, receivedAtNs: 1n, packet };
  t.equal(formatReply({ ...base, kind: 'reply' }), 'reply from 10.1.2.3 [aa:bb:cc:dd:ee:ff] 0.213 ms');
  t.equal(formatReply({ ...base, kind: 'request' }), 'request from 10.1.2.3 [aa:bb:cc:dd:ee:ff] 0.213 ms');
  t.equal(formatReply({ ...base, kind: 'conflict', rttMs: 12 }), 'conflict: probe for 10.1.2.3 from [aa:bb:cc:dd:ee:ff] 12.000 ms');
});
