/**
 * The cross-process lock around one session's refresh, so `refresh-now` runs from cron, by hand
 * and from the daemon never log in twice at once. proper-lockfile keeps the lock's mtime fresh
 * while it is held; a lock whose holder was killed goes stale and is taken over.
 */
import { mkdirSync, realpathSync, rmdirSync, statSync, utimesSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import { LockTimeoutError, WriteError, describeSystemError, hasCode } from './errors.js';

/** A lock older than this (not refreshed by a live holder) is considered abandoned. */
export const STALE_MS = 10_000;

/** The path proper-lockfile locks for a session (it creates `<path>.lock`). */
export function lockTarget(stateDir: string, name: string): string {
  return `${stateDir}/${name}`;
}

type Callback = (error: NodeJS.ErrnoException | null, value?: unknown) => void;

/** Runs a synchronous call and answers `callback` on the next tick, as the callback API would. */
function settle(call: () => unknown, callback: Callback): void {
  let value: unknown;
  let failure: NodeJS.ErrnoException | null = null;
  try {
    value = call();
  } catch (error) {
    failure = error as NodeJS.ErrnoException;
  }
  process.nextTick(callback, failure, value);
}

/**
 * The file calls proper-lockfile makes (mkdir, stat, rmdir, and utimes to keep the lock fresh),
 * done synchronously: on a local state_dir each takes microseconds, where a round trip through
 * the thread pool costs the 401 path a fraction of a millisecond per call. One object for the
 * process: proper-lockfile caches the file system's mtime precision on it.
 */
const lockFs = {
  mkdir: (path: string, callback: Callback) => settle(() => mkdirSync(path), callback),
  stat: (path: string, callback: Callback) => settle(() => statSync(path), callback),
  rmdir: (path: string, callback: Callback) => settle(() => rmdirSync(path), callback),
  rmdirSync: (path: string) => rmdirSync(path),
  utimes: (path: string, atime: Date, mtime: Date, callback: Callback) => settle(() => utimesSync(path, atime, mtime), callback),
  realpath: (path: string, callback: Callback) => settle(() => realpathSync(path), callback),
};

/**
 * Runs `fn` holding the session's lock; waits up to `timeoutMs` for another holder. Throws
 * LockTimeoutError when the wait runs out. `onCompromised` is told when the lock was lost
 * while held (its directory removed, or not refreshed in time).
 */
export async function withSessionLock<T>(stateDir: string, name: string, timeoutMs: number, fn: () => Promise<T>, onCompromised?: (error: Error) => void): Promise<T> {
  const target = lockTarget(stateDir, name);
  const deadline = Date.now() + timeoutMs;
  let release: (() => Promise<void>) | undefined;
  for (let wait = 25; ; wait = Math.min(wait * 2, 250)) {
    try {
      release = await lockfile.lock(target, {
        realpath: false,
        fs: lockFs,
        stale: STALE_MS,
        onCompromised: (error) => onCompromised?.(error),
      });
      break;
    } catch (error) {
      if (!hasCode(error, 'ELOCKED')) throw new WriteError(`cannot lock ${target}.lock: ${describeSystemError(error)}; check state_dir`, { cause: error });
      if (Date.now() >= deadline) {
        throw new LockTimeoutError(`another run held the lock ${target}.lock for over ${Math.round(timeoutMs / 1000)}s; try again, or raise lock_timeout`, { cause: error });
      }
      await delay(Math.min(wait + Math.random() * wait, Math.max(1, deadline - Date.now())));
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
