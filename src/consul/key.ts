/**
 * Layer: executor (file I/O). Reads the shared HMAC key for fence events
 * (`fence_handler.key_file`), on the handler and on the sender.
 *
 * The file must pass the key-file rule of config/permissions.ts: a regular
 * file (no symlink), owned by root, mode 0600 or stricter, in a directory
 * only root can write. The key is the file's content with surrounding
 * whitespace removed, taken as bytes, so `openssl rand -hex 32 > fence.key`
 * works on every node; it must be at least 16 bytes.
 */
import { ConfigError } from '../errors';
import { readSecureFile } from '../config/permissions';

/** Shortest key accepted, in bytes. */
export const MIN_KEY_BYTES = 16;

/**
 * Read and check the fence key file.
 * @throws ConfigError naming the file and what is wrong with it
 */
export function readFenceKey(file: string): Buffer {
  const text = readSecureFile(file, 'key', { maxBytes: 4096 });
  const key = Buffer.from(text.trim(), 'utf8');
  if (key.length < MIN_KEY_BYTES) {
    throw new ConfigError(`key file ${file} holds ${key.length} bytes; expected at least ${MIN_KEY_BYTES} (e.g. openssl rand -hex 32)`, { path: file });
  }
  return key;
}
