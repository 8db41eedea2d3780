/**
 * The session as nginx should be using it now, read from the include and the state file.
 */
import type { SessionConfig } from '../config/schema.js';
import { snapshot } from '../refresh/fresh.js';
import { parseIncludeCookie } from '../render/include.js';

/** The session as nginx should be using it now. */
export interface CurrentSession {
  generation: number;
  /** `AuthSession=...`, or undefined when the include holds no cookie. */
  cookie: string | undefined;
  /** Epoch ms, or undefined with no cookie. */
  expiresAt: number | undefined;
  /** A cookie is present, not expired, and the include on disk is the one last written. */
  valid: boolean;
  /** Epoch ms the cookie was obtained, and of the last login (the login floor counts from it). */
  obtainedAt: number | undefined;
  lastLoginAt: number | undefined;
  /** The include's bytes when they are the ones last written (to put back after a hand edit). */
  intactInclude: Buffer | undefined;
}

/** Reads the include and state of `session` as they are on disk now. */
export async function readCurrent(stateDir: string, session: SessionConfig, now = Date.now()): Promise<CurrentSession> {
  const snap = await snapshot(stateDir, session);
  const state = snap.state;
  const text = snap.include?.toString('utf8');
  const cookie = text === undefined ? undefined : parseIncludeCookie(text, session.variable);
  const expiresAt = state?.expires ? Date.parse(state.expires) : undefined;
  const intact = snap.includeSha256 !== undefined && snap.includeSha256 === state?.include_sha256;
  const time = (iso: string | undefined) => (iso === undefined ? undefined : Date.parse(iso));
  return {
    generation: state?.generation ?? 0,
    cookie,
    expiresAt,
    valid: intact && cookie !== undefined && expiresAt !== undefined && expiresAt > now,
    obtainedAt: time(state?.obtained_at ?? state?.last_login),
    lastLoginAt: time(state?.last_login),
    intactInclude: intact ? snap.include : undefined,
  };
}
