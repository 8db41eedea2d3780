/**
 * Is a pid an nginx master process? Checked before every signal, so a stale pid file whose pid
 * was recycled by another program is never signalled.
 */
import { readFile } from 'node:fs/promises';
import { hasCode } from '../errors.js';
import { UnsafeFileError, readSmallFile } from '../small-file.js';

export type ProcessIdentity = { state: 'gone' } | { state: 'nginx-master' } | { state: 'other'; command: string };

/** Identifies `pid` from /proc: gone, an nginx master, or some other program (named). */
export async function identifyProcess(pid: number, proc = '/proc'): Promise<ProcessIdentity> {
  let cmdline: string;
  try {
    cmdline = (await readFile(`${proc}/${pid}/cmdline`, 'latin1')).replace(/\0+$/, '').replace(/\0/g, ' ');
  } catch (error) {
    if (hasCode(error, 'ENOENT', 'ESRCH')) return { state: 'gone' };
    throw error;
  }
  // A zombie or kernel thread has an empty cmdline; it is not an nginx master either way.
  if (cmdline === '') return { state: 'gone' };
  // nginx rewrites its master's argv to "nginx: master process <argv>".
  if (cmdline.startsWith('nginx: master process')) return { state: 'nginx-master' };
  return { state: 'other', command: cmdline.length > 80 ? `${cmdline.slice(0, 80)}…` : cmdline };
}

/** What a pid file says about the nginx master, for the reloader and for `check` alike. */
export type MasterLookup =
  | { state: 'no-pid-file' }
  /** `nginx -t` leaves an empty pid file behind when nginx is not running. */
  | { state: 'empty' }
  | { state: 'unreadable'; error: unknown }
  | { state: 'not-a-pid' }
  | { state: 'gone'; pid: number }
  | { state: 'nginx-master'; pid: number }
  | { state: 'other'; pid: number; command: string };

/** Reads `pidFile` and identifies the process it names. Never throws for a missing or odd file. */
export async function lookupMaster(pidFile: string, proc = '/proc'): Promise<MasterLookup> {
  let text: string;
  try {
    // A pid file that is a FIFO would block a plain read forever: read only a small regular file.
    const bytes = await readSmallFile(pidFile, { maxBytes: 4096, followLinks: true });
    if (bytes === undefined) return { state: 'no-pid-file' };
    text = bytes.toString('utf8').trim();
  } catch (error) {
    return { state: 'unreadable', error: error instanceof UnsafeFileError ? new Error(error.reason, { cause: error }) : error };
  }
  if (text === '') return { state: 'empty' };
  const pid = Number(text);
  if (!Number.isSafeInteger(pid) || pid <= 1) return { state: 'not-a-pid' };
  const identity = await identifyProcess(pid, proc);
  return identity.state === 'other' ? { state: 'other', pid, command: identity.command } : { state: identity.state, pid };
}
