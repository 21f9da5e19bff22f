/**
 * Layer: config, pure. The `monitor:` section as the role registry loads it
 * (src/roles/role.ts ConfigSection): the role's own schema (schema.ts)
 * reshaped to the central loader's rules, and normalizeMonitor's coded
 * problems reported through the loader's `add`.
 *
 * Why a reshaped copy rather than editing schema.ts: normalizeMonitor keeps
 * validating raw data on its own (its unit tests pin those messages), while
 * the central loader compiles every section with strict ajv and the
 * contract wants `additionalProperties: false` on every mapping and a kind
 * on every leaf. So name → value mappings (networks, nodes, a matrix row's
 * `when`) become `patternProperties` keyed by a name pattern, and the two
 * kind-less leaves get the `fraction` and `kvprefix` kinds.
 */
import { ConfigError } from '../../errors';
import { leaf, type Schema } from '../../config/kinds';
import type { AddProblem } from '../../config/normalize';
import { normalizeMonitor, type MonitorConfig, type MonitorConfigProblem } from './config';
import { MONITOR_DEFAULTS, MONITOR_SCHEMA } from './schema';

// Network and node names: the widest of the two (node names, 63 bytes); normalize narrows network names.
const MAP_KEY = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';

function reshape(node: Schema, key?: string): Schema {
  if (key === 'kv_prefix') return leaf({ kind: 'kvprefix' }, MONITOR_DEFAULTS.kv_prefix);
  if (key === 'max_down_fraction') return leaf({ kind: 'fraction' }, MONITOR_DEFAULTS.guards.max_down_fraction);
  if (node.type === 'array') return { ...node, items: reshape(node.items as Schema) };
  if (node.type !== 'object') return node;
  const ap = node.additionalProperties;
  if (typeof ap === 'object' && ap !== null) {
    const { additionalProperties: _drop, ...rest } = node;
    return { ...rest, properties: {}, additionalProperties: false, patternProperties: { [MAP_KEY]: reshape(ap as Schema) } };
  }
  const props = Object.fromEntries(Object.entries((node.properties ?? {}) as Record<string, Schema>).map(([k, s]) => [k, reshape(s, k)]));
  return { ...node, properties: props };
}

/** The schema the central loader compiles for `monitor:`. */
export const MONITOR_SECTION_SCHEMA: Schema = reshape(MONITOR_SCHEMA);

/**
 * The loader's validated value → {@link MonitorConfig}; each problem of
 * normalizeMonitor goes to `add` with its key path and code. On problems
 * the returned value is never used (the loader throws).
 */
export function normalizeMonitorSection(value: Record<string, any>, add: AddProblem): MonitorConfig {
  try {
    return normalizeMonitor(value);
  } catch (e) {
    const problems = e instanceof ConfigError ? (e.detail as { problems?: MonitorConfigProblem[] } | undefined)?.problems : undefined;
    if (!problems) throw e;
    for (const p of problems) add(['monitor', ...p.path], `${p.text} [${p.code}]`);
    // Present (so the loader does not add "no role configured"), never used: the loader throws.
    return { networks: [], inventory: { source: 'config', hosts: [] } } as unknown as MonitorConfig;
  }
}
