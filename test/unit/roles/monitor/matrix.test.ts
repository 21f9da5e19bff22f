// Table tests of the decision matrix: hostha's defaults row by row (K-19, K-20), validation, hold on unconfirmed.
import t from 'tap';
import {
  HOSTHA_MATRIX_2, HOSTHA_MATRIX_3, allRowKeys, buildMatrix, checkMatrix, decide, defaultMatrix, fencesHost, type Matrix,
} from '../../../../src/roles/monitor/matrix';

const up = 'up';
const down = 'down';

// K-19, verbatim: (mgmt, tenant, storage) → actions.
const K19: [string, string, string, string[]][] = [
  [up, up, up, ['email']],
  [up, up, down, ['email', 'fence', 'evacuate']],
  [up, down, up, ['email', 'disabled']],
  [up, down, down, ['email', 'fence', 'evacuate']],
  [down, up, up, ['email']],
  [down, up, down, ['email', 'fence', 'evacuate']],
  [down, down, up, ['email', 'fence', 'evacuate']],
  [down, down, down, ['email', 'ipmi', 'evacuate']],
];
// K-20, verbatim: (mgmt, tenant) → actions.
const K20: [string, string, string[]][] = [
  [up, up, []],
  [up, down, ['migrate']],
  [down, up, ['email']],
  [down, down, ['ipmi', 'evacuate']],
];

t.test('K-19: every row of the 3-network default', async (t) => {
  for (const [mgmt, tenant, storage, actions] of K19) {
    const d = decide(HOSTHA_MATRIX_3, { mgmt, tenant, storage });
    t.equal(d.kind, 'row', `${mgmt}/${tenant}/${storage}`);
    if (d.kind === 'row') t.same(d.actions, actions, `${mgmt}/${tenant}/${storage} → ${actions.join(',')}`);
  }
  t.equal(Object.keys(HOSTHA_MATRIX_3.rows).length, 8);
});

t.test('K-20: every row of the 2-network default', async (t) => {
  for (const [mgmt, tenant, actions] of K20) {
    const d = decide(HOSTHA_MATRIX_2, { mgmt, tenant });
    t.equal(d.kind, 'row');
    if (d.kind === 'row') t.same(d.actions, actions, `${mgmt}/${tenant}`);
  }
});

t.test('the defaults pass their own validation', async (t) => {
  t.same(checkMatrix(HOSTHA_MATRIX_3), []);
  t.same(checkMatrix(HOSTHA_MATRIX_2), []);
});

t.test('defaultMatrix picks by network names, in any order, and has none for others', async (t) => {
  t.equal(defaultMatrix(['storage', 'mgmt', 'tenant']), HOSTHA_MATRIX_3);
  t.equal(defaultMatrix(['tenant', 'mgmt']), HOSTHA_MATRIX_2);
  t.equal(defaultMatrix(['mgmt']), undefined);
  t.equal(defaultMatrix(['mgmt', 'public']), undefined);
});

t.test('columns are positional: the row key follows the matrix columns, not the input order', async (t) => {
  const d = decide(HOSTHA_MATRIX_3, { storage: down, tenant: up, mgmt: up });
  t.match(d, { kind: 'row', row: '110', description: 'mgmt up, tenant up, storage down' });
});

t.test('an unconfirmed or missing network holds', async (t) => {
  for (const states of [
    { mgmt: down, tenant: down, storage: 'unknown' },
    { mgmt: down, tenant: 'pending', storage: down },
    { mgmt: down, tenant: down },
  ]) {
    const d = decide(HOSTHA_MATRIX_3, states);
    t.equal(d.kind, 'hold', JSON.stringify(states));
  }
  t.match(decide(HOSTHA_MATRIX_3, { mgmt: 'unknown', tenant: down, storage: down }), { kind: 'hold', unconfirmed: ['mgmt'] });
});

t.test('allRowKeys lists 2^n keys', async (t) => {
  t.same(allRowKeys(2), ['11', '10', '01', '00']);
  t.equal(allRowKeys(3).length, 8);
});

t.test('fencesHost', async (t) => {
  t.equal(fencesHost(['email', 'fence']), true);
  t.equal(fencesHost(['ipmi']), true);
  t.equal(fencesHost(['email', 'disabled', 'migrate']), false);
});

t.test('checkMatrix: each broken matrix names its problem', async (t) => {
  const base = () => ({ columns: ['mgmt', 'tenant'], rows: { ...HOSTHA_MATRIX_2.rows } as Record<string, string[]> });
  const cases: [string, (m: { columns: string[]; rows: Record<string, string[]> }) => void, RegExp][] = [
    ['missing row', (m) => { delete m.rows['00']; }, /row 00 \(mgmt down, tenant down\) is not covered/],
    ['unknown action', (m) => { m.rows['01'] = ['email', 'reboot']; }, /'reboot' is not an action/],
    ['duplicate action', (m) => { m.rows['01'] = ['email', 'email']; }, /'email' is listed twice/],
    ['evacuate before fence', (m) => { m.rows['00'] = ['evacuate', 'ipmi']; }, /not preceded by fence or ipmi/],
    ['evacuate without fence', (m) => { m.rows['10'] = ['evacuate']; }, /not preceded by fence or ipmi/],
    ['healthy host fenced', (m) => { m.rows['11'] = ['email', 'fence']; }, /row 11 .* acts on a healthy host/],
    ['stray key', (m) => { m.rows['111'] = []; }, /row 111 does not match 2 networks/],
  ];
  for (const [name, mutate, re] of cases) {
    const m = base();
    mutate(m);
    const problems = checkMatrix(m as Matrix);
    t.ok(problems.some((p) => re.test(p.text)), `${name}: ${problems.map((p) => p.text).join('; ')}`);
  }
});

t.test('buildMatrix from config rows', async (t) => {
  const rows = K20.map(([mgmt, tenant, actions]) => ({ when: { mgmt, tenant }, actions }));
  const ok = buildMatrix(['mgmt', 'tenant'], rows);
  t.same(ok.problems, []);
  t.same(ok.matrix.rows, HOSTHA_MATRIX_2.rows);

  const missing = buildMatrix(['mgmt', 'tenant'], rows.slice(0, 3));
  t.match(missing.problems, [{ path: [], text: /row 00 .* is not covered/ }]);

  const twice = buildMatrix(['mgmt', 'tenant'], [...rows, { when: { mgmt: up, tenant: up }, actions: [] }]);
  t.match(twice.problems, [{ path: [4, 'when'], text: /row 11 .* is given twice/ }]);

  const stray = buildMatrix(['mgmt', 'tenant'], [{ when: { mgmt: up, tenant: up, storage: up }, actions: [] }, ...rows.slice(1)]);
  t.match(stray.problems[0], { path: [0, 'when', 'storage'], text: /'storage' is not a configured network/ });

  const short = buildMatrix(['mgmt', 'tenant'], [{ when: { mgmt: up }, actions: [] }, ...rows.slice(1)]);
  t.match(short.problems[0], { path: [0, 'when'], text: /does not give the state of tenant/ });

  const word = buildMatrix(['mgmt', 'tenant'], [{ when: { mgmt: 'alive', tenant: up }, actions: [] }, ...rows.slice(1)]);
  t.ok(word.problems.some((p) => /'alive' is not a state/.test(p.text)));

  const badAction = buildMatrix(['mgmt', 'tenant'], [...rows.slice(0, 3), { when: { mgmt: down, tenant: down }, actions: ['evacuate'] }]);
  t.match(badAction.problems, [{ path: [3, 'actions'], text: /not preceded by fence or ipmi/ }]);
});
