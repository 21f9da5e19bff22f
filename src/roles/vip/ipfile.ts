/**
 * Layer: probe (file). The HA IP file: one address per line, IPv4[/prefix]
 * or IPv6[/prefix] (default /32 and /128), the families mixed freely; '#'
 * comments, blank lines ignored. Invalid lines are reported with their line
 * number and skipped, the rest applied (issue 3); a missing file means "no
 * extra addresses". IPv6 follows the HA address rules of util/ip6 (no
 * link-local, multicast or v4-mapped address) and is kept in canonical text,
 * so `fd00:0::1` and `fd00::1` are one address.
 *
 * Changes are seen two ways: an fs.watch on the directory (editors replace
 * files by rename, which a watch on the file itself misses) and an mtime
 * check every `ip_file_check_interval` as the backstop (vzhaipd V-30 checked
 * only the mtime, at 1 s resolution; we compare mtimeNs, size and inode).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatCidr, type Cidr } from '../../util/ip';
import { ipv6HaProblem, parseAnyCidr } from '../../util/ip6';

/** One line that was not an address. */
export interface InvalidLine { line: number; text: string; reason: string }

/** The parsed file. */
export interface IpFileContent { addresses: Cidr[]; invalid: InvalidLine[] }

/** Largest file we read: a typo'd path to a huge file must not stall the loop. */
export const MAX_IP_FILE_BYTES = 1024 * 1024;

/** Parse the text of an IP file. Pure. Duplicates are kept once, in order. */
export function parseIpFile(text: string, defaultPrefix = 32): IpFileContent {
  const addresses: Cidr[] = [];
  const invalid: InvalidLine[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const body = raw.replace(/#.*$/, '').trim();
    if (body === '') return;
    // vzhaipd split on whitespace; several addresses on one line stay accepted.
    for (const token of body.split(/\s+/)) {
      const c = parseAnyCidr(token, defaultPrefix, 128);
      if (!c) {
        invalid.push({ line: i + 1, text: token, reason: token.includes(':') ? 'not an IPv6 address or IPv6/prefix' : 'not an IPv4 address or IPv4/prefix' });
        continue;
      }
      const v6problem = c.address.includes(':') ? ipv6HaProblem(c.address) : undefined;
      if (v6problem) {
        invalid.push({ line: i + 1, text: token, reason: `${v6problem}: not an HA address` });
        continue;
      }
      const k = formatCidr(c);
      if (!seen.has(k)) {
        seen.add(k);
        addresses.push(c);
      }
    }
  });
  return { addresses, invalid };
}

/** Identity of a file version: changes whenever the content may have. */
function stamp(st: fs.Stats | undefined): string {
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : 'missing';
}

/** Result of one read: the content, or why it could not be read. */
export type IpFileRead = { ok: true; content: IpFileContent; missing: boolean } | { ok: false; error: string };

/** Read and parse the file, refusing symlinks, non-regular and oversized files. */
export function readIpFile(file: string, defaultPrefix = 32): IpFileRead {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, content: { addresses: [], invalid: [] }, missing: true };
    return { ok: false, error: `cannot stat ${file}: ${(e as Error).message}` };
  }
  if (st.isSymbolicLink()) return { ok: false, error: `${file} is a symlink; refusing to read it` };
  if (!st.isFile()) return { ok: false, error: `${file} is not a regular file` };
  if ((st.mode & 0o002) !== 0) return { ok: false, error: `${file} is world-writable (mode ${(st.mode & 0o777).toString(8)}); refusing to apply it` };
  if (st.size > MAX_IP_FILE_BYTES) return { ok: false, error: `${file} is ${st.size} bytes; the limit is ${MAX_IP_FILE_BYTES}` };
  try {
    return { ok: true, content: parseIpFile(fs.readFileSync(file, 'utf8'), defaultPrefix), missing: false };
  } catch (e) {
    return { ok: false, error: `cannot read ${file}: ${(e as Error).message}` };
  }
}

/**
 * Watch the file: `onChange(read)` after every change (debounced), and on a
 * periodic stamp check. `close()` stops both.
 */
export function watchIpFile(file: string, checkIntervalMs: number, onChange: (r: IpFileRead) => void, debounceMs = 50): { close(): void; check(): void } {
  let last = stampOf(file);
  let debounce: NodeJS.Timeout | undefined;
  const check = () => {
    const now = stampOf(file);
    if (now === last) return;
    last = now;
    onChange(readIpFile(file));
  };
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(path.dirname(file), { persistent: false }, (_ev, name) => {
      if (name !== null && name !== path.basename(file)) return;
      if (debounce) clearTimeout(debounce);
      debounce = setTimeout(check, debounceMs);
    });
    watcher.on('error', () => { /* the periodic check still runs */ });
  } catch {
    watcher = undefined; // directory missing: the periodic check covers it
  }
  const timer = setInterval(check, checkIntervalMs);
  timer.unref();
  return {
    check,
    close() {
      clearInterval(timer);
      if (debounce) clearTimeout(debounce);
      watcher?.close();
    },
  };
}

function stampOf(file: string): string {
  try {
    return stamp(fs.lstatSync(file));
  } catch {
    return stamp(undefined);
  }
}
