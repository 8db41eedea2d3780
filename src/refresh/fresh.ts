/**
 * The cheap question every run asks first: is this session's cookie still fresh, with the
 * include on disk exactly as we wrote it? Reads two small files and loads nothing heavy, so a
 * `refresh-now` that has nothing to do finishes fast.
 */
import { createHash } from 'node:crypto';
import type { AnySessionConfig } from '../config/schema.js';
import { WriteError } from '../errors.js';
import { readIfExists } from '../render/write.js';
import { loginReason, type LoginReason } from '../state/freshness.js';
import { readState, type SessionState } from '../state/store.js';

/** What is on disk for one session right now. */
export interface SessionSnapshot {
  state: SessionState | undefined;
  include: Buffer | undefined;
  includeSha256: string | undefined;
  /**
   * Why the include or the state file cannot be used (not a regular file, a symbolic link, too
   * big, unreadable). The unusable file reads as absent here; a pass must refuse to go on.
   */
  problem?: WriteError | undefined;
}

/** sha256 hex of some bytes. */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads the state file and the include. Never throws for an odd file: see `problem`. */
export async function snapshot(stateDir: string, session: AnySessionConfig): Promise<SessionSnapshot> {
  const [state, include] = await Promise.allSettled([readState(stateDir, session.name), readIfExists(session.include, { what: 'the include', key: 'include' })]);
  const value = <T>(result: PromiseSettledResult<T>): T | undefined => {
    if (result.status === 'fulfilled') return result.value;
    if (result.reason instanceof WriteError) return undefined;
    throw result.reason;
  };
  const bytes = value(include);
  const problem = [include, state].find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as WriteError | undefined;
  return { state: value(state), include: bytes, includeSha256: bytes ? sha256(bytes) : undefined, ...(problem ? { problem } : {}) };
}

/** What the caller asks of a pass beyond "keep it fresh". */
export interface WorkOptions {
  /** Log in even when the cookie is fresh. */
  force?: boolean | undefined;
  /**
   * Log in unless the current generation is already newer than this (another run replaced the
   * cookie that failed). Used by the daemon for scheduled and 401-triggered refreshes, so two
   * processes never replace one cookie twice.
   */
  ifGenerationAtMost?: number | undefined;
}

/** Why this session needs work (a login, or a reload still owed), or undefined when it needs none. */
export function pendingWork(snap: SessionSnapshot, now: Date, options: WorkOptions = {}): LoginReason | 'reload-pending' | undefined {
  if (options.force) return 'forced';
  const reason = loginReason(snap.state, snap.includeSha256, now);
  const owedReload = snap.state?.reload_pending ? 'reload-pending' : undefined;
  if (options.ifGenerationAtMost === undefined) return reason ?? owedReload;
  // A missing, hand-edited or expired cookie needs a login whatever the generation says.
  if (reason === 'no-session' || reason === 'include-changed' || reason === 'expired') return reason;
  const state = snap.state!;
  if (state.generation > options.ifGenerationAtMost) return owedReload;
  return 'requested';
}
