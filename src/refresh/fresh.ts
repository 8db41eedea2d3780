/**
 * The cheap question every run asks first: is this session's cookie still fresh, with the
 * include on disk exactly as we wrote it? Reads two small files and loads nothing heavy, so a
 * `refresh-now` that has nothing to do finishes fast.
 */
import { createHash } from 'node:crypto';
import type { SessionConfig } from '../config/schema.js';
import { readIfExists } from '../render/write.js';
import { loginReason, type LoginReason } from '../state/freshness.js';
import { readState, type SessionState } from '../state/store.js';

/** What is on disk for one session right now. */
export interface SessionSnapshot {
  state: SessionState | undefined;
  include: Buffer | undefined;
  includeSha256: string | undefined;
}

/** sha256 hex of some bytes. */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads the state file and the include. */
export async function snapshot(stateDir: string, session: SessionConfig): Promise<SessionSnapshot> {
  const [state, include] = await Promise.all([readState(stateDir, session.name), readIfExists(session.include)]);
  return { state, include, includeSha256: include ? sha256(include) : undefined };
}

/** Why this session needs work (a login, or a reload still owed), or undefined when it needs none. */
export function pendingWork(snap: SessionSnapshot, now: Date, force: boolean): LoginReason | 'reload-pending' | undefined {
  if (force) return 'forced';
  return loginReason(snap.state, snap.includeSha256, now) ?? (snap.state?.reload_pending ? 'reload-pending' : undefined);
}
