/**
 * Layer: policy (pure). The decision matrix of the monitor role: a host's
 * confirmed per-network state → an ordered list of actions.
 *
 * A row is written in hostha's notation, one digit per network in column
 * order, `1` = up, `0` = down (`110` = mgmt up, tenant up, storage down).
 * The defaults are hostha's matrices verbatim (spec/seed-inventory.md
 * K-19 for mgmt/tenant/storage, K-20 for mgmt/tenant; the columns are
 * positional, K-21). Validation happens when the config loads, so a running
 * monitor never meets a vector it has no row for (hostha raised TypeError
 * there, K-21; Masakari's `valid_matrix()` is an empty stub).
 *
 * A network whose state is not confirmed (pending or unknown) selects no
 * row: the decision is "hold" (DESIGN.md: unknown is never evidence).
 */

/** The actions a row may name (hostha's words, K-19/K-20, K-27…K-34). */
export const MATRIX_ACTIONS = ['email', 'fence', 'ipmi', 'evacuate', 'disabled', 'migrate'] as const;

/**
 * One action of a row:
 * - `email`: a health notification (hostha's `host.health.update`, K-27);
 * - `fence`: the host's fence method (an event on a network where it is
 *   still up, or ipmi/redfish/command), confirmed by the BMC (K-29);
 * - `ipmi`: a hard power-off through the BMC, confirmed (K-30);
 * - `evacuate`: recovery of the host's workload, only after a confirmed
 *   fence (K-33; part 2 of the role);
 * - `disabled`: disable the host's compute service (K-28; part 2);
 * - `migrate`: move workload off a host that is still up (K-34; part 2).
 */
export type MatrixAction = (typeof MATRIX_ACTIONS)[number];

/** A network's state as the matrix sees it. */
export type NetState = 'up' | 'down';

/** A validated matrix: the columns (network names) and one action list per row key. */
export interface Matrix {
  columns: readonly string[];
  /** Key: one digit per column, `1` up, `0` down. Every 2^n key is present. */
  rows: Readonly<Record<string, readonly MatrixAction[]>>;
}

/** A row as written in the config: network name → state, and its actions. */
export interface MatrixRowSpec {
  when: Record<string, string>;
  actions: readonly string[];
}

/** hostha's 3-network matrix (mgmt, tenant, storage), K-19. */
export const HOSTHA_MATRIX_3: Matrix = {
  columns: ['mgmt', 'tenant', 'storage'],
  rows: {
    111: ['email'],
    110: ['email', 'fence', 'evacuate'],
    101: ['email', 'disabled'],
    100: ['email', 'fence', 'evacuate'],
    '011': ['email'],
    '010': ['email', 'fence', 'evacuate'],
    '001': ['email', 'fence', 'evacuate'],
    '000': ['email', 'ipmi', 'evacuate'],
  },
};

/** hostha's 2-network matrix (mgmt, tenant), K-20. */
export const HOSTHA_MATRIX_2: Matrix = {
  columns: ['mgmt', 'tenant'],
  rows: {
    11: [],
    10: ['migrate'],
    '01': ['email'],
    '00': ['ipmi', 'evacuate'],
  },
};

/** The default matrix for these networks, or undefined when hostha has none for them. */
export function defaultMatrix(networks: readonly string[]): Matrix | undefined {
  const same = (m: Matrix) => m.columns.length === networks.length && m.columns.every((c) => networks.includes(c));
  if (same(HOSTHA_MATRIX_3)) return HOSTHA_MATRIX_3;
  if (same(HOSTHA_MATRIX_2)) return HOSTHA_MATRIX_2;
  return undefined;
}

/** The row key of a state vector, in column order. */
export function rowKey(columns: readonly string[], states: Readonly<Record<string, NetState>>): string {
  return columns.map((c) => (states[c] === 'up' ? '1' : '0')).join('');
}

/** Every row key for n columns, all-up first (`11`, `10`, `01`, `00`). */
export function allRowKeys(n: number): string[] {
  const out: string[] = [];
  for (let i = 2 ** n - 1; i >= 0; i--) out.push(i.toString(2).padStart(n, '0'));
  return out;
}

/** A problem found in a matrix: where (row index or key) and what. */
export interface MatrixProblem { path: (string | number)[]; text: string }

const FENCING: readonly MatrixAction[] = ['fence', 'ipmi'];

/**
 * Check a matrix: every row covered exactly once, only known actions, none
 * twice in a row, `evacuate` only after `fence` or `ipmi` in the same row
 * (recovery never runs on an unfenced host), and nothing but `email` when
 * every network is up (a healthy host is never touched).
 */
export function checkMatrix(m: Matrix): MatrixProblem[] {
  const problems: MatrixProblem[] = [];
  const keys = allRowKeys(m.columns.length);
  for (const k of keys) if (!(k in m.rows)) problems.push({ path: [], text: `row ${k} (${describeRow(m.columns, k)}) is not covered (expected an action list for every combination)` });
  for (const [k, actions] of Object.entries(m.rows)) {
    if (!keys.includes(k)) { problems.push({ path: [k], text: `row ${k} does not match ${m.columns.length} networks` }); continue; }
    problems.push(...checkActions(actions, k, m.columns).map((text) => ({ path: [k], text })));
  }
  return problems;
}

function checkActions(actions: readonly string[], key: string, columns: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  actions.forEach((a, i) => {
    if (!(MATRIX_ACTIONS as readonly string[]).includes(a)) out.push(`'${a}' is not an action (expected one of ${MATRIX_ACTIONS.join(', ')})`);
    if (seen.has(a)) out.push(`'${a}' is listed twice in row ${key}`);
    seen.add(a);
    if (a === 'evacuate' && !actions.slice(0, i).some((b) => FENCING.includes(b as MatrixAction))) {
      out.push(`'evacuate' in row ${key} is not preceded by fence or ipmi (expected a confirmed fence before any recovery)`);
    }
  });
  if (!key.includes('0') && actions.some((a) => a !== 'email')) {
    out.push(`row ${key} (${describeRow(columns, key)}) acts on a healthy host (expected at most email)`);
  }
  return out;
}

/** `mgmt up, tenant down`. */
export function describeRow(columns: readonly string[], key: string): string {
  return columns.map((c, i) => `${c} ${key[i] === '1' ? 'up' : 'down'}`).join(', ');
}

/**
 * Build a matrix from config rows (`when: {mgmt: up, …}`, `actions`),
 * collecting every problem. Rows must name exactly the given networks with
 * `up` or `down`, and a combination may appear once.
 */
export function buildMatrix(columns: readonly string[], specs: readonly MatrixRowSpec[]): { matrix: Matrix; problems: MatrixProblem[] } {
  const rows: Record<string, MatrixAction[]> = {};
  const problems: MatrixProblem[] = [];
  specs.forEach((spec, i) => {
    const names = Object.keys(spec.when);
    const bad = names.filter((n) => !columns.includes(n));
    const missing = columns.filter((c) => !names.includes(c));
    if (bad.length > 0) problems.push({ path: [i, 'when', bad[0]!], text: `'${bad[0]}' is not a configured network (expected one of ${columns.join(', ')})` });
    if (missing.length > 0) problems.push({ path: [i, 'when'], text: `does not give the state of ${missing.join(', ')} (expected up or down for every network: ${columns.join(', ')})` });
    for (const n of names) {
      const v = spec.when[n];
      if (v !== 'up' && v !== 'down') problems.push({ path: [i, 'when', n], text: `'${String(v)}' is not a state (expected up or down)` });
    }
    if (bad.length > 0 || missing.length > 0) return;
    const key = rowKey(columns, spec.when as Record<string, NetState>);
    if (key in rows) { problems.push({ path: [i, 'when'], text: `row ${key} (${describeRow(columns, key)}) is given twice (expected each combination once)` }); return; }
    rows[key] = spec.actions as MatrixAction[];
  });
  const matrix: Matrix = { columns: [...columns], rows };
  // Coverage and action checks, reported against the row index that wrote the key.
  const indexOf = (key: string) => specs.findIndex((s) => Object.keys(s.when).length === columns.length && rowKey(columns, s.when as Record<string, NetState>) === key);
  for (const p of checkMatrix(matrix)) {
    const key = p.path[0];
    problems.push(key === undefined ? p : { path: [indexOf(String(key)), 'actions'], text: p.text });
  }
  return { matrix, problems };
}

/** The outcome of {@link decide}. */
export type Decision =
  | { kind: 'row'; row: string; description: string; actions: readonly MatrixAction[] }
  | { kind: 'hold'; reason: string; unconfirmed: string[] };

/**
 * Look up the row for a host's per-network state. Any column that is not
 * `up` or `down` (pending, unknown, or absent) makes the decision "hold".
 */
export function decide(m: Matrix, states: Readonly<Record<string, string | undefined>>): Decision {
  const unconfirmed = m.columns.filter((c) => states[c] !== 'up' && states[c] !== 'down');
  if (unconfirmed.length > 0) return { kind: 'hold', reason: `state not confirmed on ${unconfirmed.join(', ')}`, unconfirmed };
  const row = rowKey(m.columns, states as Record<string, NetState>);
  return { kind: 'row', row, description: describeRow(m.columns, row), actions: m.rows[row] ?? [] };
}

/** True when the actions power the host off (fence or ipmi). */
export function fencesHost(actions: readonly MatrixAction[]): boolean {
  return actions.some((a) => FENCING.includes(a));
}
