/**
 * Layer: config. The validated, normalized configuration every role reads.
 *
 * YAML keys are snake_case and match the README word for word; these types
 * are what the loader returns after applying defaults and checks: durations
 * in milliseconds, addresses parsed, paths absolute. Nothing downstream sees
 * raw YAML. The common keys are here; each role's section type lives in its
 * folder and joins {@link VigilConfig} through the registry.
 */
import type { LogLevel } from '../log';
import type { ListenAddress } from './kinds';
import type { RoleConfigs } from '../roles';

/** The keys every config has, whatever roles it runs. */
export interface CommonConfig {
  /** Where it was loaded from (absolute), for messages and reload. */
  file: string;
  node: string;
  pidfile: string;
  stateDir: string;
  log: { level: LogLevel; file?: string };
  /** The Prometheus listener; absent = off. */
  metrics?: { listen: ListenAddress; allowRemote: boolean };
}

/** The whole file. A role is on when its section is present (and, for some, not idle). */
export type VigilConfig = CommonConfig & RoleConfigs;
