/**
 * Layer: roles. The runtime role (`runtime_publish:`), the compute-node
 * side of the monitor: the periodic job that publishes this host's
 * runtime_config to KV while it is healthy (os_nova's runtime_info). The
 * one-shot `vigil monitor publish-runtime` shares its rules (publish.ts).
 */
import { defineRole } from '../role';
import { RUNTIME_PUBLISH_SCHEMA, normalizeRuntimePublish } from './config';
import { formatRuntimeStatus } from './status';

export default defineRole({
  name: 'runtime',
  summary: "publish this compute host's runtime_config to KV while it is healthy",
  dir: __dirname,
  section: {
    key: 'runtime_publish',
    configKey: 'runtimePublish',
    schema: RUNTIME_PUBLISH_SCHEMA,
    nullable: [],
    normalize: (v) => normalizeRuntimePublish(v),
  },
  secretFiles: (c) => (c.consul.tokenFile !== undefined ? [{ path: c.consul.tokenFile, kind: 'key' as const, label: 'token file (runtime_publish)' }] : []),
  daemon: {
    logRole: 'runtime',
    healthRule: 'a cycle finished within 2 × interval + 3 × request_timeout + 5s',
    load: async () => (await import('./daemon')).createRuntimeRunner,
    formatStatus: formatRuntimeStatus,
  },
});
