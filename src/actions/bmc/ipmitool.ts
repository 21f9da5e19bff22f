/**
 * Layer: executor. BMC power through Debian's `ipmitool -I lanplus`, run by
 * the shared command runner (timeout, process-group kill). Only the fence
 * path spawns it: the steady-state reachability check is the UDP probe in
 * src/net/bmc/.
 *
 * The password never reaches argv (hostha's K-32): with `password_via: env`
 * (default) it goes in the child's environment and ipmitool gets `-E`; with
 * `password_via: file` ipmitool reads the checked 0600 file itself (`-f`).
 * The child gets a minimal environment (no inherited secrets, C locale so
 * the output parses) and stdin /dev/null, so a missing password makes it
 * fail at once instead of waiting on `Password:` (bmc-and-nova.md §1a).
 */
import { runCommand, type CommandResult, type RunOptions } from '../commands';
import { ConfigError } from '../../errors';
import { moduleLog, type Logger } from '../../log';
import { isIPv4 } from '../../util/ip';
import { loadBmcCredentials, redact, type BmcCredentials } from './credentials';
import type { ActionOutcome, BmcFailureCode, PowerAction, PowerDriver, PowerReading } from './types';

/** Options of the `ipmi` method (config keys in snake_case in brackets). */
export interface IpmiOptions {
  /** BMC address [ip], IPv4 literal. */
  ip: string;
  /** UDP port [port]; default 623. */
  port?: number;
  /** BMC user [user]. */
  user: string;
  /** Root-only 0600 file with the password on its first line [password_file]. */
  passwordFile: string;
  /** How ipmitool gets the password [password_via]: `env` (-E, default) or `file` (-f). */
  passwordVia?: 'env' | 'file';
  /** ipmitool's path [program]; default /usr/bin/ipmitool. */
  program?: string;
  /** RMCP+ cipher suite [cipher_suite]; default 17 (always explicit, §1a). */
  cipherSuite?: number;
  /** ipmitool -N, seconds per try [retry_timeout]; default 1. */
  tryTimeoutS?: number;
  /** ipmitool -R, tries [retries]; default 2 (a silent BMC then costs ≈ 6 s). */
  retries?: number;
  /** Hard bound on one ipmitool run [command_timeout]; default 10 s. */
  commandTimeoutMs?: number;
}

/** The command runner, injectable for unit tests. */
export type Runner = (argv: readonly string[], opts: RunOptions) => Promise<CommandResult>;

/** Dependencies of {@link IpmiTool}. */
export interface IpmiDeps {
  run?: Runner;
  log?: Logger;
}

const STATUS_RE = /^Chassis Power is (on|off)$/m;
const CONTROL_RE = /^Chassis Power Control: (\S.*)$/m;

/** The tail of a command's output for evidence, one line, bounded. */
function tail(s: string, max = 300): string {
  const one = s.trim().split('\n').map((l) => l.trim()).filter(Boolean).join(' | ');
  return one.length > max ? `…${one.slice(-max)}` : one;
}

/**
 * One BMC driven by ipmitool. The constructor checks the options and reads
 * the credentials (throws {@link ConfigError}: refused defaults, a password
 * file readable by others, a bad address), so a role can do it at config time.
 */
export class IpmiTool implements PowerDriver {
  readonly method = 'ipmi';
  readonly target: string;
  readonly #creds: BmcCredentials;
  readonly #opts: Required<Omit<IpmiOptions, 'passwordFile' | 'user' | 'ip'>> & IpmiOptions;
  readonly #run: Runner;
  readonly #log: Logger;

  constructor(opts: IpmiOptions, deps: IpmiDeps = {}) {
    if (!isIPv4(opts.ip)) throw new ConfigError(`ip ${JSON.stringify(opts.ip)} is not an IPv4 address; expected the BMC's address`, { key: 'ip' });
    const port = opts.port ?? 623;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`port ${port} is out of range; expected 1–65535`, { key: 'port' });
    const cs = opts.cipherSuite ?? 17;
    if (!Number.isInteger(cs) || cs < 0 || cs > 17) throw new ConfigError(`cipher_suite ${cs} is not an IPMI cipher suite; expected 0–17 (17 or 3)`, { key: 'cipher_suite' });
    const program = opts.program ?? '/usr/bin/ipmitool';
    if (!program.startsWith('/')) throw new ConfigError(`program ${JSON.stringify(program)} is not an absolute path`, { key: 'program' });
    this.#creds = loadBmcCredentials(opts.user, opts.passwordFile, { ipmi: true });
    this.#opts = {
      ...opts,
      port,
      passwordVia: opts.passwordVia ?? 'env',
      program,
      cipherSuite: cs,
      tryTimeoutS: opts.tryTimeoutS ?? 1,
      retries: opts.retries ?? 2,
      commandTimeoutMs: opts.commandTimeoutMs ?? 10_000,
    };
    this.target = `${opts.ip}:${port}`;
    this.#run = deps.run ?? runCommand;
    this.#log = (deps.log ?? moduleLog('bmc')).child({ method: 'ipmi', bmc: this.target });
  }

  /** The argv for `chassis power <word>`: no secret in it, by construction. */
  argv(word: PowerAction | 'status'): string[] {
    const o = this.#opts;
    const auth = o.passwordVia === 'file' ? ['-f', o.passwordFile] : ['-E'];
    return [o.program, '-I', 'lanplus', '-H', o.ip, '-p', String(o.port), '-U', this.#creds.user, ...auth,
      '-C', String(o.cipherSuite), '-N', String(o.tryTimeoutS), '-R', String(o.retries), 'chassis', 'power', word];
  }

  /** The child's whole environment: PATH, C locale and, with `env`, the password. */
  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };
    if (this.#opts.passwordVia === 'env') {
      // ipmitool -E reads IPMITOOL_PASSWORD first, then IPMI_PASSWORD (ipmi_main.c); set both the same.
      env.IPMITOOL_PASSWORD = this.#creds.password;
      env.IPMI_PASSWORD = this.#creds.password;
    }
    return env;
  }

  private async exec(word: PowerAction | 'status'): Promise<CommandResult> {
    const argv = this.argv(word);
    const r = await this.#run(argv, { timeoutMs: this.#opts.commandTimeoutMs, env: this.env(), killGraceMs: 500 });
    const pw = this.#creds.password;
    const clean = { ...r, stdout: redact(r.stdout, pw), stderr: redact(r.stderr, pw), ...(r.spawnError ? { spawnError: redact(r.spawnError, pw) } : {}) };
    this.#log.debug({ argv, code: r.code, timedOut: r.timedOut, durationMs: Math.round(r.durationMs), stderr: tail(clean.stderr) }, `ipmitool power ${word}`);
    return clean;
  }

  /** `chassis power status` → on | off | unknown (anything else, a timeout, a failure). */
  async powerStatus(): Promise<PowerReading> {
    const r = await this.exec('status');
    const m = r.ok ? STATUS_RE.exec(r.stdout) : null;
    if (m) return { state: m[1] as 'on' | 'off', detail: `Chassis Power is ${m[1]}`, durationMs: r.durationMs };
    return { state: 'unknown', ...failure(r, this.#opts.commandTimeoutMs), durationMs: r.durationMs };
  }

  /** `chassis power off|on|cycle`; ok when ipmitool exits 0 and prints `Chassis Power Control: …`. */
  async power(action: PowerAction): Promise<ActionOutcome> {
    const r = await this.exec(action);
    const m = r.ok ? CONTROL_RE.exec(r.stdout) : null;
    if (m) return { ok: true, detail: `Chassis Power Control: ${m[1]!.trim()}`, durationMs: r.durationMs };
    return { ok: false, ...failure(r, this.#opts.commandTimeoutMs), durationMs: r.durationMs };
  }
}

/** ipmitool's failure as evidence, sorted by its stderr (bmc-and-nova.md §1b). */
function failure(r: CommandResult, timeoutMs: number): { detail: string; code: BmcFailureCode } {
  if (r.spawnError) return { detail: `ipmitool could not start: ${r.spawnError}`, code: 'EBMCSPAWN' };
  if (r.timedOut) return { detail: `ipmitool killed after ${timeoutMs} ms`, code: 'EBMCTIMEOUT' };
  const why = tail(r.stderr) || tail(r.stdout) || 'no output';
  const detail = `ipmitool ${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}: ${why}`;
  let code: BmcFailureCode = 'EBMCREFUSED';
  if (r.code === 0) code = 'EBMCOUTPUT';
  else if (/Could not open socket/.test(r.stderr)) code = 'EBMCUNREACHABLE';
  else if (/Unable to establish IPMI v2 \/ RMCP\+ session/.test(r.stderr)) code = 'EBMCSESSION';
  return { detail, code };
}
