// Operator verbs: parsing, --help, exit 2 on bad input.
import t from 'tap';
import { MONITOR_HELP, parseMonitorArgs } from '../../../../src/roles/monitor/verbs';

t.test('good input', async (t) => {
  const table: [string[], object][] = [
    [['status'], { verb: 'status', json: false, config: '/etc/vigil/vigil.yml' }],
    [['status', '--json', '-c', '/tmp/v.yml'], { verb: 'status', json: true, config: '/tmp/v.yml' }],
    [['reset', 'cmp-01'], { verb: 'reset', host: 'cmp-01' }],
    [['maintenance', 'on', 'cmp-01'], { verb: 'maintenance', on: true, host: 'cmp-01' }],
    [['maintenance', 'off', 'cmp-01', '--config', '/x.yml'], { verb: 'maintenance', on: false, host: 'cmp-01', config: '/x.yml' }],
  ];
  for (const [args, want] of table) t.match(parseMonitorArgs(args), want, args.join(' '));
});

t.test('--help for the group and each verb', async (t) => {
  t.same(parseMonitorArgs([]), { verb: 'help', text: MONITOR_HELP.monitor });
  t.same(parseMonitorArgs(['--help']), { verb: 'help', text: MONITOR_HELP.monitor });
  for (const v of ['status', 'reset', 'maintenance'] as const) {
    t.same(parseMonitorArgs([v, '--help']), { verb: 'help', text: MONITOR_HELP[v] });
    t.match(MONITOR_HELP[v], new RegExp(`^usage: vigil monitor ${v}`));
  }
  t.same(parseMonitorArgs(['reset', '-h']), { verb: 'help', text: MONITOR_HELP.reset }, 'help without HOST is not an error');
});

t.test('vigil monitor --help lists every registered verb, release-spare and publish-runtime included', async (t) => {
  const { default: def } = await import('../../../../src/roles/monitor/index');
  const names = (def.verbs ?? []).map((v) => v.name);
  t.ok(names.includes('release-spare') && names.includes('publish-runtime'), 'registered on the role');
  for (const n of names) t.match(MONITOR_HELP.monitor, new RegExp(`^  ${n} `, 'm'), `${n} in the group help`);
  const { dispatch } = await import('../../../../src/cli/main');
  const { capture } = await import('../../../support/capture');
  const r = await capture(() => dispatch(['monitor', '--help']));
  t.equal(r.code, 0);
  for (const n of names) t.match(r.stdout, new RegExp(`^  ${n} `, 'm'), `${n} in vigil monitor --help`);
});

t.test('bad input: exit 2 with a message', async (t) => {
  const table: [string[], RegExp][] = [
    [['evacuate'], /unknown verb "evacuate"/],
    [['status', 'cmp-01'], /status: .*positional/i],
    [['status', '--bogus'], /status: .*bogus/],
    [['reset'], /reset: HOST is missing/],
    [['reset', 'a', 'b'], /reset: one HOST expected, got 2/],
    [['reset', 'bad host'], /reset: "bad host" is not a node name/],
    [['reset', '-x'], /reset: .*-x/],
    [['maintenance', 'cmp-01'], /maintenance: "cmp-01" is not on or off/],
    [['maintenance'], /maintenance: on or off is missing/],
    [['maintenance', 'on'], /maintenance: HOST is missing/],
    [['maintenance', 'on', 'a', 'b'], /one HOST expected, got 2/],
    [['reset', '--json', 'a'], /reset: .*json/],
  ];
  for (const [args, re] of table) {
    const r = parseMonitorArgs(args);
    t.equal(r.verb, 'error', args.join(' '));
    if (r.verb === 'error') {
      t.equal(r.exit, 2);
      t.match(r.message, re, args.join(' '));
    }
  }
});
