/**
 * Layer: executor support. BMC credentials: read from a root-only file,
 * checked by the shared permission library, and refused when they are
 * os_nova's defaults.
 *
 * hostha put the IPMI password on ipmitool's command line, in clear in its
 * DB and in its logs (seed inventory K-32); os_nova_ha_monitor wrote the
 * default `test` / `Test123.` for every node (N-18). vigil reads the secret
 * from a 0600 root file (config `password_file`), keeps it out of argv and
 * log lines, and refuses the defaults at config time.
 */
import { readSecureFile } from '../../config/permissions';
import { ConfigError } from '../../errors';

/** os_nova_ha_monitor's default BMC credentials (N-18), refused everywhere. */
export const DEFAULT_USER = 'test';
export const DEFAULT_PASSWORD = 'Test123.';

/** IPMI v2.0 passwords are at most 20 bytes; `ipmitool -f` silently cuts longer ones. */
export const IPMI_PASSWORD_MAX_BYTES = 20;

/** A user and the secret, which must never reach argv or a log line. */
export interface BmcCredentials {
  user: string;
  password: string;
}

/**
 * Validate a BMC user name: non-empty, printable, no leading `-` (it goes
 * into argv after `-U`, and a leading dash would read as an option).
 */
export function checkBmcUser(user: string, key = 'user'): void {
  if (user.length === 0 || user.length > 64 || !/^[\x21-\x7e]+$/.test(user) || user.startsWith('-')) {
    throw new ConfigError(`${key} ${JSON.stringify(user)} is not a valid BMC user name; expected 1–64 printable characters, not starting with '-'`, { key });
  }
}

/**
 * Read the password from `passwordFile` (first line, without its line end),
 * after {@link readSecureFile} has checked it is a regular root file with
 * no group/other bits (0600), and refuse os_nova's default credentials.
 * `ipmi` also enforces the IPMI 20-byte limit. Throws {@link ConfigError}.
 */
export function loadBmcCredentials(user: string, passwordFile: string, opts: { ipmi?: boolean } = {}): BmcCredentials {
  checkBmcUser(user);
  const text = readSecureFile(passwordFile, 'key', { label: 'BMC password file', maxBytes: 4096 });
  const password = text.split(/\r?\n/, 1)[0] ?? '';
  if (password.length === 0) throw new ConfigError(`BMC password file ${passwordFile} is empty; expected the password on its first line`, { path: passwordFile });
  // The default password is refused with any user: it is the published half
  // of the pair (N-18). The message names the file, never the value read.
  if (password === DEFAULT_PASSWORD) {
    throw new ConfigError(`BMC password file ${passwordFile} holds os_nova's default password (${user === DEFAULT_USER ? 'with its default user, ' : ''}N-18); set a real BMC password`, { path: passwordFile });
  }
  if (opts.ipmi && Buffer.byteLength(password) > IPMI_PASSWORD_MAX_BYTES) {
    throw new ConfigError(`BMC password file ${passwordFile}: the password is longer than IPMI's ${IPMI_PASSWORD_MAX_BYTES} bytes`, { path: passwordFile });
  }
  if (/[\t\0]/.test(password)) {
    // ipmitool -f cuts at a tab; refuse rather than authenticate with a different secret.
    throw new ConfigError(`BMC password file ${passwordFile}: the password contains a tab or NUL`, { path: passwordFile });
  }
  return { user, password };
}

/** Replace every occurrence of `secret` in `text` (stderr tails, error messages) before it is logged. */
export function redact(text: string, secret: string): string {
  return secret.length === 0 ? text : text.split(secret).join('[redacted]');
}
