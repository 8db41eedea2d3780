/**
 * Atomic file replacement: a temp file in the same directory, written, fsynced, given its mode
 * and group, renamed over the target, then the directory fsynced. A reader sees the old bytes or
 * the new bytes, never a mix, and a crash at any point leaves one or the other.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WriteError, describeSystemError, hasCode } from '../errors.js';
import { UnsafeFileError, readSmallFile } from '../small-file.js';

export interface WriteOptions {
  /** File mode, e.g. 0o640; applied with fchmod so the umask cannot widen or narrow it. */
  mode: number;
  /** Group id to give the file; undefined keeps the process's group. */
  gid?: number | undefined;
}

/**
 * Largest include or state file read. Ours are a few hundred bytes (an include at most about
 * 4.3 KiB); anything bigger was not written by session-refresher and is refused, not read.
 */
export const MAX_OWNED_FILE_BYTES = 64 * 1024;

/** What a file is called in messages, and the configuration key that points at it. */
export interface FileLabel {
  /** e.g. "the include". */
  what: string;
  /** e.g. "include" or "state_dir". */
  key: string;
}

/**
 * The bytes of a file this tool owns and replaces (the include, a state file), or undefined when
 * nothing is at the path. Only a regular file of at most MAX_OWNED_FILE_BYTES is read, and a
 * symbolic link at the path is not followed: its target would be read, and restored into the
 * include byte for byte. Anything else (FIFO, device, socket, directory, link, too big) and any
 * read failure throws WriteError, naming the file, what is there and what to do; nothing is
 * written then, so the odd file stays as it is.
 */
export async function readIfExists(path: string, label: FileLabel = { what: 'the file', key: 'its configuration key' }): Promise<Buffer | undefined> {
  try {
    return await readSmallFile(path, { maxBytes: MAX_OWNED_FILE_BYTES, followLinks: false });
  } catch (error) {
    if (error instanceof UnsafeFileError) {
      throw new WriteError(`${label.what} ${error.message}; session-refresher reads and replaces only a regular file there: move it away, or point ${label.key} elsewhere`, { cause: error });
    }
    throw new WriteError(`cannot read ${label.what} ${path}: ${describeSystemError(error)}`, { cause: error });
  }
}

/** The temp file name a writer with `pid` uses for `path`, and a pattern matching any writer's. */
function tempName(path: string, pid: number): string {
  return join(dirname(path), `.${basename(path)}.${pid}.${randomBytes(4).toString('hex')}.tmp`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return hasCode(error, 'EPERM');
  }
}

/**
 * Removes temp files a killed writer left beside `path` (their pid is gone). Writers of one file
 * hold its lock, so a live writer's temp file is never touched.
 */
async function removeOrphanTemps(path: string): Promise<void> {
  const prefix = `.${basename(path)}.`;
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const pid = Number(/^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length))?.[1]);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid)) await unlink(join(dirname(path), name)).catch(() => undefined);
  }
}

/** Replaces `path` with `data` atomically. Throws WriteError (target untouched) on failure. */
export async function writeAtomic(path: string, data: string | Buffer, options: WriteOptions): Promise<void> {
  const dir = dirname(path);
  await removeOrphanTemps(path);
  const temp = tempName(path, process.pid);
  let step = 'create a temporary file in';
  try {
    const handle = await open(temp, 'wx', options.mode);
    try {
      step = 'write';
      await handle.writeFile(data);
      step = 'set the mode of';
      await handle.chmod(options.mode);
      if (options.gid !== undefined) {
        step = 'set the group of';
        await handle.chown(-1, options.gid);
      }
      step = 'fsync';
      await handle.sync();
    } finally {
      await handle.close();
    }
    step = 'rename over';
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    const target = step === 'create a temporary file in' ? dir : path;
    throw new WriteError(`cannot ${step} ${target}: ${describeSystemError(error)}; ${hint(error)}`, { cause: error });
  }
  await syncDirectory(dir);
}

/** Removes `path` if present (used to undo a first-ever include that nginx rejected). */
export async function removeIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (!hasCode(error, 'ENOENT')) throw new WriteError(`cannot remove ${path}: ${describeSystemError(error)}`, { cause: error });
  }
  await syncDirectory(dirname(path));
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the rename durable. Some filesystems refuse fsync on a directory; the rename stands anyway.
  try {
    const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

function hint(error: unknown): string {
  if (hasCode(error, 'ENOSPC', 'EDQUOT')) return 'free space on that filesystem';
  if (hasCode(error, 'EROFS')) return 'the filesystem is read-only; point the include at a writable directory';
  if (hasCode(error, 'EACCES', 'EPERM')) return 'make the directory writable by this user (and the group settable)';
  if (hasCode(error, 'ENOENT')) return 'create the directory first';
  return 'check the directory';
}
