/**
 * Layer: config. The validated, normalized configuration every role reads.
 *
 * YAML keys are snake_case and match the README word for word; these types
 * are what the loader returns after applying defaults and checks: durations
 * in milliseconds, addresses parsed, paths absolute. Nothing downstream sees
 * raw YAML.
 */
import type { Command } from '../actions/commands';
import type { Cidr } from '../util/ip';
import type { LogLevel } from '../log';

/** `vip.track`: a keepalived-style health check of the service. */
export interface TrackConfig {
  command: Command;
  intervalMs: number;
  /** Consecutive failures that make a master step down. */
  fall: number;
  /** Consecutive passes before a failing node may take over again. */
  rise: number;
  timeoutMs: number;
}

/** The HA IP role (`vip:`). */
export interface VipConfig {
  interface: string;
  /** The HA cluster IP: probed, added first, removed last. */
  address: Cidr;
  ipFile?: string;
  checkIntervalMs: number;
  failureCheckIntervalMs: number;
  takeOverAfter: number;
  probeTimeoutMs: number;
  masterCheckIntervalMs: number;
  ipFileCheckIntervalMs: number;
  announce: { count: number; intervalMs: number };
  onMaster?: Command;
  onSlave?: Command;
  commandTimeoutMs: number;
  track?: TrackConfig;
  /** How addresses are applied: netlink on `interface`, or vzctl into a container. */
  backend: 'netlink' | 'vzctl';
  container?: string;
  vzctl: string;
  vzlist: string;
  containerSettleMs: number;
}

/** One local Consul agent supervised by the fence role. */
export interface AgentConfig {
  name: string;
  url: string;
  tokenFile?: string;
  command?: readonly string[];
  join?: readonly string[];
}

/** The self-fencing role (`fence:`); `actions` are shared with the handler. */
export interface FenceConfig {
  agents: readonly AgentConfig[];
  interfaces?: readonly string[];
  checkIntervalMs: number;
  confirmCycles: number;
  requestTimeoutMs: number;
  neighbourProbeTimeoutMs: number;
  actions: readonly Command[];
  actionTimeoutMs: number;
  dryRun: boolean;
  watchdog?: { device: string; timeoutMs: number };
}

/** The Consul event handler (`fence_handler:`). */
export interface FenceHandlerConfig {
  event: string;
  maxAgeMs: number;
  maxSkewMs: number;
  keyFile?: string;
  onEnable: readonly Command[];
}

/** The whole file. A role is on when its section is present. */
export interface VigilConfig {
  /** Where it was loaded from (absolute), for messages and reload. */
  file: string;
  node: string;
  pidfile: string;
  stateDir: string;
  log: { level: LogLevel; file?: string };
  vip?: VipConfig;
  fence?: FenceConfig;
  fenceHandler?: FenceHandlerConfig;
}
