/**
 * Atomic file replacement: a temp file in the same directory, written, fsynced, given its mode
 * and group, renamed over the target, then the directory fsynced. A reader sees the old bytes or
 * the new bytes, never a mix, and a crash at any point leaves one or the other.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WriteError, describeSystemError, hasCode } from '../errors.js';

export interface WriteOptions {
  /** File mode, e.g. 0o640; applied with fchmod so the umask cannot widen or narrow it. */
  mode: number;
  /** Group id to give the file; undefined keeps the process's group. */
  gid?: number | undefined;
}

/** The file's bytes, or undefined when it does not exist. Other errors become WriteError. */
export async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if (hasCode(error, 'ENOENT')) return undefined;
    throw new WriteError(`cannot read ${path}: ${describeSystemError(error)}`, { cause: error });
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
    const handle = await open(dir, 'r');
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
