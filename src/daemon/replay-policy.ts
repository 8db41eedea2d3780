/**
 * The fallback's decisions for one rejected request (pure): replay at once with a newer cookie,
 * answer 503 while a failed refresh backs off, ask the backend, or replace the cookie; and
 * before a login, whether to go now, hold the request for the login floor, or refuse it.
 */
import type { LoopSuspicion } from './verdicts.js';

/** What the fallback knows when a request comes back with a 401. */
export interface RejectedRequest {
  /** The generation nginx sent the request with (undefined: not said). */
  failedGeneration: number | undefined;
  /** The current generation, and whether its cookie is present, unexpired and ours. */
  generation: number;
  valid: boolean;
  /**
   * The current cookie was obtained to replace one the backend refused, so it postdates the
   * failure nginx reports. A newer cookie from a routine rotation does not: whatever killed the
   * older one (a new secret) may have killed it too.
   */
  currentPostdatesFailure: boolean;
  /** Ms until a failed refresh may be retried (<= 0: not backing off). */
  backoffLeftMs: number;
  /** The loop guard is raised. */
  looping: boolean;
}

/**
 * stale: nginx used an older generation and the current cookie postdates the failure; replay
 * with it, no question asked (the tail of a 401 storm, before nginx has reloaded).
 * backoff: a refresh failed and its retry is not due; 503 with Retry-After.
 * probe: ask the backend whether the current cookie is alive.
 * replace: no usable cookie, or the loop guard is raised (probes are unreliable then); get a new one.
 */
export function onRejected(r: RejectedRequest): 'stale' | 'backoff' | 'probe' | 'replace' {
  if (r.valid && r.currentPostdatesFailure && r.failedGeneration !== undefined && r.generation > r.failedGeneration) return 'stale';
  if (r.backoffLeftMs > 0) return 'backoff';
  return r.valid && !r.looping ? 'probe' : 'replace';
}

/** Before a login for a rejected request. */
export interface LoginGate {
  /** Ms until the login floor (`min_refresh_interval` after the last login) has passed. */
  floorLeftMs: number;
  /** A refresh is already running: join it, whatever the floor. */
  refreshing: boolean;
  loop: LoopSuspicion | undefined;
  /** The longest a request is held for the floor. */
  maxHoldMs: number;
}

/** go: log in (or join the refresh) now; hold: wait `ms` first; refuse: 503 for `retryAfter` seconds. */
export type GateDecision = { kind: 'go' } | { kind: 'hold'; ms: number } | { kind: 'refuse'; retryAfter: number; code: 'ERR_SESSION_LOOP' | 'ERR_LOGIN_FLOOR' };

/** Whether a login for a rejected request may happen now. */
export function loginGate(g: LoginGate): GateDecision {
  if (g.floorLeftMs <= 0 || g.refreshing) return { kind: 'go' };
  const retryAfter = Math.max(1, Math.ceil(g.floorLeftMs / 1000));
  if (g.loop) return { kind: 'refuse', retryAfter, code: 'ERR_SESSION_LOOP' };
  if (g.floorLeftMs > g.maxHoldMs) return { kind: 'refuse', retryAfter, code: 'ERR_LOGIN_FLOOR' };
  return { kind: 'hold', ms: g.floorLeftMs };
}
