/**
 * Layer: config, pure. The `runtime_publish:` section of the runtime role:
 * its schema with the documented defaults (src/roles/runtime/sample.yml),
 * its type and its normalisation.
 */
import { resolve } from 'node:path';
import { duration, leaf, path, section, type Schema } from '../../config/kinds';
import { ms } from '../../config/normalize';

/** The periodic runtime_config publication of a compute node (`runtime_publish:`). */
export interface RuntimePublishConfig {
  consul: { url: string; tokenFile?: string; caFile?: string };
  kvPrefix: string;
  /** This node's compute name in KV; undefined: the config's `node`. */
  host?: string;
  file: string;
  intervalMs: number;
  requestTimeoutMs: number;
}

/** The schema of `runtime_publish:`. */
export const RUNTIME_PUBLISH_SCHEMA: Schema = section('a mapping with the runtime_config publication settings (consul is required)', {
  consul: section('a mapping with the keys url (required), token_file and ca_file', {
    url: leaf({ kind: 'url' }),
    token_file: path(),
    ca_file: path(),
  }, { required: ['url'] }),
  kv_prefix: leaf({ kind: 'kvprefix' }, 'ha_cluster'),
  host: leaf({ kind: 'node' }),
  file: path('/etc/vigil/runtime_config.json'),
  // At least a second: one KV read per interval is the whole steady-state cost.
  interval: duration('60s', 1000),
  request_timeout: duration('5s', 100, 60_000),
}, { required: ['consul'] });

/** The validated `runtime_publish:` mapping → {@link RuntimePublishConfig}. */
export function normalizeRuntimePublish(v: Record<string, any>): RuntimePublishConfig {
  const c = v.consul as Record<string, any>;
  return {
    consul: {
      url: new URL(c.url).origin,
      ...(c.token_file !== undefined ? { tokenFile: resolve(c.token_file) } : {}),
      ...(c.ca_file !== undefined ? { caFile: resolve(c.ca_file) } : {}),
    },
    kvPrefix: v.kv_prefix,
    ...(v.host !== undefined ? { host: v.host } : {}),
    file: resolve(v.file),
    intervalMs: ms(v.interval),
    requestTimeoutMs: ms(v.request_timeout),
  };
}
