/**
 * Layer: executor. The BMC power module's public face, for the `monitor`
 * and `promote` roles: parse a fence section, build its driver at config
 * time (credentials checked then), probe the BMC in the steady state
 * without spawning, and power off with confirmation during an incident.
 * See README.md in this folder for the config keys.
 */
export { parseFenceSection } from './config';
export { createPowerDriver, powerOffConfirmed, realClock, fenceTiming } from './fence';
export type { Clock, FenceDeps, FenceEvidence, FenceMethod, FenceOptions, FenceResult, HostCheck, IpmiMethod, RedfishMethod, CommandMethod } from './fence';
export type { ActionOutcome, PowerAction, PowerDriver, PowerReading, PowerState } from './types';
export { probeBmc } from '../../net/bmc/prober';
export type { BmcProbeOptions, BmcProbeResult, BmcProbeStatus } from '../../net/bmc/prober';
