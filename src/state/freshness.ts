/**
 * Does a session need a new login? (pure)
 *
 * A run logs in when there is no cookie yet, when the include on disk is not the one we wrote
 * (edited or removed by hand), or when less than half of the cookie's lifetime is left.
 */
import type { SessionState } from './store.js';

/** Why a pass logs in: no cookie yet, include edited by hand, past half-life, expired, --force, or asked (daemon). */
export type LoginReason = 'no-session' | 'include-changed' | 'half-life' | 'expired' | 'forced' | 'requested';

/** Seconds until the cookie expires (negative once expired), or undefined with no cookie. */
export function secondsLeft(state: SessionState | undefined, now: Date): number | undefined {
  if (!state?.expires) return undefined;
  return (Date.parse(state.expires) - now.getTime()) / 1000;
}

/** Why a login is needed, or undefined when the current cookie is fresh enough. */
export function loginReason(state: SessionState | undefined, includeSha256: string | undefined, now: Date): LoginReason | undefined {
  if (!state?.expires || !state.issued || state.generation === 0) return 'no-session';
  if (includeSha256 === undefined || state.include_sha256 !== includeSha256) return 'include-changed';
  const expires = Date.parse(state.expires);
  const issued = Date.parse(state.issued);
  if (Number.isNaN(expires) || Number.isNaN(issued)) return 'no-session';
  if (expires <= now.getTime()) return 'expired';
  const lifetime = Math.max(0, expires - issued);
  return expires - now.getTime() < lifetime / 2 ? 'half-life' : undefined;
}
