/**
 * Layer: role `group` (issue 16), public surface for the role registry: the
 * config section, the CLI entry, the engine and its extension points
 * (`PreflightCheck` for the owner lock, `Member.monitor` for monitoring
 * while active). Replaces xcatha.py (seed inventory §3).
 */
export { groupSection, normalizeGroups, GROUP_DEFAULTS, GROUP_SECTION_SCHEMA } from './config';
export { groupMain, loadGroups } from './cli';
export { GroupEngine } from './engine';
export { OpQueue } from './queue';
export type { EngineDeps, PreflightCheck, PreflightResult, Report, Step, MemberReport } from './engine';
export { buildMembers, addressProbeCheck, runHook, RealAddressIo } from './io';
export type { GroupConfig, Member, MemberConfig, MemberStatus, StepOutcome, Effect, HookName } from './types';
export { EXIT } from './types';
