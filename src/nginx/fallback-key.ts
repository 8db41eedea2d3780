/**
 * The fallback key: a per-install secret that proves a request on the fallback endpoint comes
 * from nginx. The daemon's fallback replays requests with the service account's session, so
 * any other local process that could reach it would get that account's rights. The key is
 * generated once, kept in a small nginx include (mode 0640) that the generated snippet pulls
 * into `location @session_refresh`, and compared in constant time on every request.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import { ConfigError, WriteError, describeSystemError, hasCode } from '../errors.js';
import { UnsafeFileError, readSmallFile } from '../small-file.js';

/** The request header nginx sends the key in (lower case, as Node presents headers). */
export const KEY_HEADER = 'x-session-refresher-key';

/** Mode of the key file: the service and its group (nginx's) may read it, nobody else. */
export const KEY_FILE_MODE = 0o640;

const KEY_LINE = /^proxy_set_header X-Session-Refresher-Key "([0-9a-f]{64})";$/m;

/** Where the key lives: `daemon.fallback_key_file`, or `fallback-key.conf` in the state directory. */
export function fallbackKeyPath(config: Config): string {
  return config.daemon.fallback_key_file ?? join(config.state_dir, 'fallback-key.conf');
}

/** The include's text for `key` (pure). */
export function renderKeyFile(key: string): string {
  return [
    '# session-refresher: the fallback key. nginx sends it to the daemon with every rejected request;',
    '# the daemon refuses requests without it. Generated once; keep it mode 0640. To change it:',
    '# delete this file, restart the daemon, then reload nginx.',
    `proxy_set_header X-Session-Refresher-Key "${key}";`,
    '',
  ].join('\n');
}

/** The key in a key file's text, or undefined when the text is not one this tool wrote (pure). */
export function parseKeyFile(text: string): string | undefined {
  return KEY_LINE.exec(text)?.[1];
}

/** A digest to compare against: equal lengths, so the comparison leaks nothing by its time. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares presented header values with the key in constant time. */
export function keyChecker(key: string): (presented: string | string[] | undefined) => boolean {
  const expected = digest(key);
  return (presented) => typeof presented === 'string' && timingSafeEqual(digest(presented), expected);
}

/** Reads the key at `path`; undefined when no file is there. Throws ConfigError for anything but a key file. */
export async function readFallbackKey(path: string): Promise<string | undefined> {
  let bytes: Buffer | undefined;
  try {
    bytes = await readSmallFile(path, { maxBytes: 4096, followLinks: false });
  } catch (error) {
    const why = error instanceof UnsafeFileError ? error.message : `${path}: ${describeSystemError(error)}`;
    throw new ConfigError([`daemon.fallback_key_file: cannot read the fallback key: ${why}`], 'daemon', { cause: error });
  }
  if (bytes === undefined) return undefined;
  const key = parseKeyFile(bytes.toString('utf8'));
  if (key === undefined) throw new ConfigError([`daemon.fallback_key_file: ${path} holds no key written by session-refresher; delete it to have a new one made, then reload nginx`], 'daemon');
  return key;
}

/**
 * The install's key, made when absent. Creation is all or nothing (a complete temporary file,
 * then a hard link that fails if another process made the file first), so a concurrent reader
 * never sees half a key and two processes never end up with different keys.
 */
export async function ensureFallbackKey(path: string): Promise<{ key: string; created: boolean }> {
  const existing = await readFallbackKey(path);
  if (existing !== undefined) return { key: existing, created: false };
  const key = randomBytes(32).toString('hex');
  const temp = join(dirname(path), `.fallback-key.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    // The default lives in state_dir, which the first run makes (as it does for state files).
    await mkdir(dirname(path), { recursive: true, mode: 0o750 });
    const handle = await open(temp, 'wx', KEY_FILE_MODE);
    try {
      await handle.writeFile(renderKeyFile(key));
      await handle.chmod(KEY_FILE_MODE);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
  } catch (error) {
    if (hasCode(error, 'EEXIST')) {
      const theirs = await readFallbackKey(path);
      if (theirs !== undefined) return { key: theirs, created: false };
    }
    throw new WriteError(`cannot create the fallback key ${path}: ${describeSystemError(error)}; create its directory and let the service write there, or set daemon.fallback_key_file`, { cause: error });
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return { key, created: true };
}
