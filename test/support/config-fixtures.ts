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
    monitor: {
      networks: { mgmt: { url: 'http://127.0.0.1:8500' }, tenant: { url: 'http://127.0.0.1:8501' } },
      inventory: { hosts: [{ name: 'cmp-01', nodes: { tenant: 'cmp-01-t' }, bmc: { ip: '192.0.2.101', user: 'admin', password_file: '/etc/vigil/bmc/cmp-01' } }] },
      matrix: [
        { when: { mgmt: 'up', tenant: 'up' }, actions: [] },
        { when: { mgmt: 'up', tenant: 'down' }, actions: ['migrate'] },
        { when: { mgmt: 'down', tenant: 'up' }, actions: ['email'] },
        { when: { mgmt: 'down', tenant: 'down' }, actions: ['ipmi', 'evacuate'] },
      ],
      guards: {},
      fence: {},
    },
    group: { somename: { members: [{ type: 'address', address: '10.0.0.101/24', interface: 'eth0', arp: {} }] } },
    promote: {
      name: 'mail', site: 'dc2', peer: 'dc1', consul: {}, fence: {}, failback: {},
      peer_probes: [{ kind: 'icmp', host: '10.0.1.10' }], ready: [{ kind: 'tcp', host: '10.0.2.5', port: 443 }],
      prereq: { key: 'vigil/promote/mail/replication', equals: 'ACTIVE' },
      promote_steps: [{ name: 'promote', command: ['/bin/true'] }], demote_steps: [{ name: 'demote', command: ['/bin/true'] }],
    },
  };
}
