// Test support: config inputs shared by the config tests and the golden
// file generator, so the golden cases are built from the same tables.

/** A plain YAML mapping as a test builds it. */
export type Obj = Record<string, unknown>;

/** A valid config with every section, each optional sub-section present. */
export function fullConfig(): Obj {
  return {
    node: 'web-a',
    vip: { interface: 'eth0', address: '10.0.0.100/24', announce: {}, track: { command: 'true' } },
    fence: { agents: [{ name: 'mgmt', url: 'http://127.0.0.1:8500' }], watchdog: {} },
    fence_handler: {},
  };
}
