/**
 * Layer: roles. The contract every role folder meets: one
 * {@link RoleDefinition} exported by `src/roles/<name>/index.ts` and one
 * line in the registry (`src/roles/index.ts`). The config loader, the
 * daemon, `vigil --help`, `vigil status` and the permission checks walk
 * the registry; none of them names a role (telegraf's plugin + `all/`
 * line). See `src/roles/README.md` for the checklist.
 *
 * A definition must stay cheap to load: it holds the section's schema, its
 * normalisation and the status formatter, and reaches everything else (the
 * runner and its I/O, the verbs, the importers) through `load` thunks, so
 * `vigil fence-handler` never loads the ARP layer or another role's code.
 */
import type { SecureFileKind } from '../config/permissions';
import type { AddProblem, KeyPath } from '../config/normalize';
import type { Schema } from '../config/kinds';
import type { VigilConfig } from '../config/types';
import type { Logger } from '../log';
import type { Notifier } from '../daemon/notify';

/** What a section's normalisation gets besides its own validated value. */
export interface SectionContext {
  /** Report a problem at a key path (absolute: it starts with the section key). */
  add: AddProblem;
  /** The whole validated file (defaults filled in), for a rule that reads another section. */
  file: Readonly<Record<string, unknown>>;
}

/** A role's section of `vigil.yml`. */
export interface ConfigSection<K extends string = string, C = unknown> {
  /** The YAML key, snake_case as documented: `vip`, `fence_handler`. */
  key: string;
  /** The property of the loaded {@link VigilConfig} that holds the normalized section: `fenceHandler`. */
  configKey: K;
  /**
   * The section's JSON schema, built with the `config/kinds` builders:
   * every leaf a kind and its documented default, every mapping a
   * `description` (what messages say is expected).
   */
  schema: Schema;
  /**
   * Mappings that may be written bare (`key:`, YAML null) to mean "the
   * defaults", as paths below the section; `[]` is the section itself.
   */
  nullable: readonly (readonly string[])[];
  /** Adjust the whole raw file before validation (after bare sections became `{}`), when the file holds the section (it may add another section). Rare. */
  prepare?(file: Record<string, unknown>): void;
  /** The validated value (defaults in) → the role's config type, with the cross-key checks. */
  normalize(value: Record<string, any>, ctx: SectionContext): C;
  /** Whether a present section switches the role on (default: yes). */
  active?(config: C): boolean;
  /**
   * When no role is on but this section is present: the key path and text
   * that say why it does not count (`others`: the other sections' keys).
   */
  idle?(value: Record<string, any>, others: readonly string[]): [KeyPath, string];
}

/** A file a role trusts, checked for owner and mode by `check-config` and at load. */
export interface SecretFile {
  path: string;
  kind: SecureFileKind;
  /** Word for messages instead of the kind's (`token file (agent mgmt)`). */
  label?: string;
  /** Checked only when it exists (an IP file that is not there means "none"). */
  ifExists?: boolean;
}

/** One running role as the daemon drives it. */
export interface RoleRunner {
  readonly name: string;
  start(): Promise<void>;
  stop(): void;
  readonly done: Promise<number>;
  /** Why the new config cannot be applied live, or undefined. */
  canReload(next: VigilConfig): string | undefined;
  reload(next: VigilConfig): void;
  /** The role's status JSON (`vigil status --json`, under `roles.<name>`). */
  status(): unknown;
  /** The role's health rule: true while its loop makes progress (systemd watchdog). */
  healthy(nowMs: number): boolean;
  /** `vigil leave` (the fence role leaves its Consul agents). */
  leave?(): Promise<unknown>;
}

/** What the daemon hands a role it starts. */
export interface RoleContext {
  log: Logger;
  notifier: Notifier;
}

/** Builds a role's runner from the whole config (the role reads its own section). */
export type RunnerFactory = (cfg: VigilConfig, ctx: RoleContext) => RoleRunner;

/** The daemon side of a role. */
export interface RoleDaemon {
  /**
   * What log lines without a role of their own carry while this role is the
   * first one configured (see log.ts `setLogRole`).
   */
  logRole: string;
  /** The health rule in words, for the docs (the runner's `healthy` implements it). */
  healthRule: string;
  /** Load the runner code (and its I/O) only when the daemon runs the role. */
  load(): Promise<RunnerFactory>;
  /** `vigil status`'s human lines for this role's status JSON. */
  formatStatus(status: Record<string, any>): string[];
}

/** A CLI entry point: arguments → exit code (0 ok, 1 failed, 2 bad input). */
export type VerbMain = (args: string[]) => Promise<number>;

/** An operator verb: `vigil <role> <name>`. */
export interface VerbDefinition {
  name: string;
  /** One line for `vigil --help`. */
  summary: string;
  /** Older top-level names kept working (`vigil fence-handler`). */
  aliases?: readonly string[];
  /** Loaded on use; must answer `--help` with `usage: vigil …` on stdout and exit 0. */
  load(): Promise<VerbMain>;
}

/** A legacy config importer: `vigil config import <name> FILE` (and `import-<name>`). */
export interface ImporterDefinition {
  name: string;
  summary: string;
  load(): Promise<VerbMain>;
}

/** Everything the program knows about a role, in one object. */
export interface RoleDefinition<K extends string = string, C = any> {
  /** The folder name; also the name in status, logs and `vigil <role> <verb>`. */
  name: string;
  /** One line: what the role does. */
  summary: string;
  /** The role's folder (`__dirname`): its README.md and sample.yml live there. */
  dir: string;
  section: ConfigSection<K, C>;
  /** The files the role trusts, for the permission checks. */
  secretFiles?(config: C): SecretFile[];
  /** Present when the daemon runs the role; absent for a verbs-only role. */
  daemon?: RoleDaemon;
  verbs?: readonly VerbDefinition[];
  importers?: readonly ImporterDefinition[];
}

/** What the registry knows of a role without loading its folder. */
export interface RegistryLine<K extends string = string> {
  name: string;
  /** The section's YAML key. */
  key: string;
  /** The section's property of {@link VigilConfig}. */
  configKey: K;
}

/**
 * A registry line: the role's name and section keys, known without loading
 * anything, and the rest of its definition loaded from its folder the first
 * time something reads it. A daemon that runs one role loads no other role's
 * folder (their schemas, normalisation and status code were 3 MiB of a
 * vip-only daemon's RSS, bench/memory.ts): the loader, the daemon and the
 * permission checks read a section's key first and the rest only for
 * sections the file holds. The loaded definition must agree with the line
 * (the registry test loads them all).
 */
export function lazyRole<const K extends string, C>(line: RegistryLine<K>, load: () => { default: RoleDefinition<K, C> }): RoleDefinition<K, C> {
  let def: RoleDefinition<K, C> | undefined;
  const full = (): RoleDefinition<K, C> => {
    if (def === undefined) {
      const d = load().default;
      if (d.name !== line.name || d.section.key !== line.key || d.section.configKey !== line.configKey) {
        throw new Error(`role ${line.name}: the registry line (${line.name}, ${line.key}, ${line.configKey}) does not match its folder's definition (${d.name}, ${d.section.key}, ${d.section.configKey})`);
      }
      def = d;
    }
    return def;
  };
  const section: ConfigSection<K, C> = {
    key: line.key,
    configKey: line.configKey,
    get schema() { return full().section.schema; },
    get nullable() { return full().section.nullable; },
    get prepare() { return full().section.prepare; },
    get normalize() { return full().section.normalize; },
    get active() { return full().section.active; },
    get idle() { return full().section.idle; },
  };
  return {
    name: line.name,
    section,
    get summary() { return full().summary; },
    get dir() { return full().dir; },
    get secretFiles() { return full().secretFiles; },
    get daemon() { return full().daemon; },
    get verbs() { return full().verbs; },
    get importers() { return full().importers; },
  };
}

/** The normalized config type of a definition. */
export type SectionConfig<D> = D extends RoleDefinition<string, infer C> ? C : never;

/** Identity with the literal `configKey` kept, so the registry can derive {@link VigilConfig}'s role keys. */
export function defineRole<const K extends string, C>(def: RoleDefinition<K, C>): RoleDefinition<K, C> {
  return def;
}

/** A role's normalized section in a loaded config, if present. */
export function sectionOf<C = unknown>(cfg: VigilConfig, def: RoleDefinition): C | undefined {
  return (cfg as unknown as Record<string, unknown>)[def.section.configKey] as C | undefined;
}

/** True when a loaded config switches the role on. */
export function isActive(cfg: VigilConfig, def: RoleDefinition): boolean {
  const c = sectionOf(cfg, def);
  return c !== undefined && (def.section.active?.(c) ?? true);
}
