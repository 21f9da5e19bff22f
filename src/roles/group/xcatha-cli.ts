/**
 * Layer: CLI. `vigil config import xcatha -p PATH -v VIP -i NIC [-n HOSTNAME]
 * [-m MASK] [-t DBTYPE]`: print the `group:` section that does what
 * `xcatha.py -a` / `-d` did (xcatha.ts). Reads `<PATH>/etc/xcat/cfgloc`
 * and `<PATH>/etc/xcat/console.lock` from the shared storage as data;
 * writes nothing. Exit 0 on success, 2 on bad arguments.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '../../errors';
import { DB_TYPES, XcathaImportError, importXcatha, type DbType } from './xcatha';

const USAGE = `usage: vigil config import xcatha -p PATH -v VIP -i NIC [-n HOSTNAME] [-m MASK] [-t DBTYPE]

Print the vigil group (vigil group activate|deactivate xcat) equivalent to
xcatha.py's activate and deactivate with the same options. Reads
PATH/etc/xcat/cfgloc (the database type unless -t is given) and
PATH/etc/xcat/console.lock (the console service) if present; writes nothing.

  -p PATH       the shared data path (xcatha -p)
  -v VIP        the virtual IP (xcatha -v)
  -i NIC        the interface; an alias like eth0:0 means eth0 (xcatha -i)
  -n HOSTNAME   the VIP's host name (xcatha -n): adds a hostname member
  -m MASK       netmask (default 255.255.255.0)
  -t DBTYPE     postgresql, mariadb or sqlite (default: from cfgloc)
  -h, --help    this help

Exit status: 0 on success, 2 on bad arguments.
`;

export { USAGE };

/** Read at most a few KiB of a small shared file, or undefined when it is not there. */
function readSmall(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  if (!statSync(file).isFile()) return undefined;
  return readFileSync(file).subarray(0, 64 * 1024).toString('utf8');
}

/** Run the importer with the arguments after `xcatha`; returns the exit code. */
export async function run(rest: string[]): Promise<number> {
  let values: { path?: string; vip?: string; nic?: string; hostname?: string; mask?: string; dbtype?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest, strict: true, allowPositionals: false,
      options: {
        path: { type: 'string', short: 'p' }, vip: { type: 'string', short: 'v' }, nic: { type: 'string', short: 'i' },
        hostname: { type: 'string', short: 'n' }, mask: { type: 'string', short: 'm' }, dbtype: { type: 'string', short: 't' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`vigil: config import xcatha: ${errorMessage(e)}\n${USAGE}`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE); return 0; }
  const missing = (['path', 'vip', 'nic'] as const).filter((k) => values[k] === undefined);
  if (missing.length) {
    process.stderr.write(`vigil: config import xcatha: ${missing.map((k) => `-${k[0] === 'n' ? 'i' : k[0]}`).join(', ')} required\n${USAGE}`);
    return 2;
  }
  if (values.dbtype !== undefined && !(DB_TYPES as readonly string[]).includes(values.dbtype)) {
    process.stderr.write(`vigil: config import xcatha: -t ${JSON.stringify(values.dbtype)} is not a database type (expected ${DB_TYPES.join(', ')})\n`);
    return 2;
  }
  const path = values.path!;
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    process.stderr.write(`vigil: config import xcatha: -p ${JSON.stringify(path)} is not a directory (expected the shared data path)\n`);
    return 2;
  }
  try {
    const cfgloc = readSmall(join(path, 'etc', 'xcat', 'cfgloc'));
    const consoleLock = readSmall(join(path, 'etc', 'xcat', 'console.lock'));
    process.stdout.write(importXcatha({
      path, vip: values.vip!, nic: values.nic!, mask: values.mask ?? '255.255.255.0',
      ...(values.hostname !== undefined ? { hostname: values.hostname } : {}),
      ...(values.dbtype !== undefined ? { dbType: values.dbtype as DbType } : {}),
      ...(cfgloc !== undefined ? { cfgloc: cfgloc.slice(0, 2) } : {}),
      ...(consoleLock !== undefined ? { consoleLock } : {}),
    }));
    return 0;
  } catch (e) {
    process.stderr.write(`vigil: config import xcatha: ${errorMessage(e)}\n`);
    return e instanceof XcathaImportError ? 2 : 1;
  }
}
