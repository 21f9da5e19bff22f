/**
 * Layer: config, pure. The `fence_handler:` section of the fence-event
 * role: its schema with the documented defaults
 * (src/roles/fence-event/sample.yml), its type, and its normalisation.
 *
 * The handler runs `fence.actions` (with `fence.action_timeout` and
 * `fence.dry_run`): a `fence_handler` without a `fence` section gets a
 * `fence` section of defaults.
 */
import { resolve } from 'node:path';
import type { Command } from '../../actions/commands';
import { clone, command, duration, leaf, list, path, section, type Schema } from '../../config/kinds';
import { ms, toCommand } from '../../config/normalize';

/** The Consul event handler (`fence_handler:`). */
export interface FenceHandlerConfig {
  event: string;
  maxAgeMs: number;
  maxSkewMs: number;
  keyFile?: string;
  onEnable: readonly Command[];
}

/** Default `fence_handler.on_enable`. */
export const DEFAULT_ON_ENABLE: readonly (readonly string[])[] = [['systemctl', 'enable', '--now', 'openstack-nova-compute']];

/** The schema of `fence_handler:`. */
export const FENCE_HANDLER_SCHEMA: Schema = section('a mapping with the fence event handler settings', {
  event: leaf({ kind: 'event' }, 'fence'),
  max_age: duration('120s', 1000),
  max_skew: duration('30s', 0),
  key_file: path(),
  on_enable: list('a list of commands', command(), { maxItems: 32, default: clone(DEFAULT_ON_ENABLE) }),
});

/** The validated `fence_handler:` mapping → {@link FenceHandlerConfig}. */
export function normalizeFenceHandler(h: Record<string, any>): FenceHandlerConfig {
  return {
    event: h.event,
    maxAgeMs: ms(h.max_age),
    maxSkewMs: ms(h.max_skew),
    ...(h.key_file !== undefined ? { keyFile: resolve(h.key_file) } : {}),
    onEnable: (h.on_enable as unknown[]).map(toCommand),
  };
}
