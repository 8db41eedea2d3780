/**
 * When a session cookie was issued and when it expires, in local clock time (pure).
 *
 * Order of evidence: Max-Age (relative, so immune to clock skew); else Expires; else the
 * timestamp CouchDB puts inside AuthSession (base64url of "user:HEXSECONDS:hmac") plus the
 * configured lifetime; else now plus the lifetime. Absolute backend times (Expires, the cookie
 * timestamp) are corrected by the backend's Date header when it has one, so a backend whose clock
 * is off by minutes still yields a sane local expiry.
 *
 * The backend's word is not taken blindly: a cookie that is already expired when it arrives is
 * refused (ProtocolError: writing it would only make the daemon log in again at once, forever),
 * and a lifetime longer than MAX_LIFETIME_SECONDS is cut to it, so no date out of JavaScript's
 * range (or a timer beyond it) can ever come out of here.
 */
import { ProtocolError } from '../errors.js';
import type { SessionCookie } from './cookie.js';

/** Where an expiry came from; `expires_in` (an OAuth2 token response) and `exp` (a JWT) for token kinds. */
export type ExpirySource = 'max-age' | 'expires' | 'cookie-timestamp' | 'lifetime' | 'expires_in' | 'exp';

/**
 * The longest lifetime believed, 30 days. CouchDB's default session is 10 minutes; a month is
 * beyond any sane session, and well inside the range of dates and timers.
 */
export const MAX_LIFETIME_SECONDS = 30 * 24 * 3600;

export interface Expiry {
  issued: Date;
  expires: Date;
  source: ExpirySource;
  /** Set when the backend claimed a longer life than MAX_LIFETIME_SECONDS: what it claimed, in seconds (Infinity: beyond the date range). */
  clampedFrom?: number | undefined;
}

export interface ExpiryInput {
  cookie: SessionCookie;
  username: string;
  /** Seconds; used when the cookie says nothing about its own expiry. */
  lifetime: number;
  /** Local time when the response arrived. */
  now: Date;
  /** The response's Date header, if any. */
  serverDate?: string | undefined;
  /** The cookie's name, for messages. Default AuthSession. */
  cookieName?: string | undefined;
}

/** Largest absolute value of a valid JavaScript date, in ms since the epoch. */
const MAX_DATE_MS = 8.64e15;

/** A Date for `ms`, or undefined when it is not a number or outside the date range. */
function dateAt(ms: number): Date | undefined {
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS ? new Date(ms) : undefined;
}

/**
 * Reads the issue time CouchDB encodes in an AuthSession value, or undefined when the value does
 * not have that shape. The username is known, so the hex timestamp is the field after "user:".
 */
export function cookieTimestamp(value: string, username: string): Date | undefined {
  let decoded: string;
  try {
    decoded = Buffer.from(value, 'base64url').toString('latin1');
  } catch {
    return undefined;
  }
  const prefix = `${Buffer.from(username, 'utf8').toString('latin1')}:`;
  if (!decoded.startsWith(prefix)) return undefined;
  const match = /^([0-9A-Fa-f]{1,12}):/.exec(decoded.slice(prefix.length));
  if (!match) return undefined;
  return dateAt(Number.parseInt(match[1]!, 16) * 1000);
}

/**
 * Computes issue and expiry times in the local clock. The expiry is after `now` and at most
 * MAX_LIFETIME_SECONDS after it (`clampedFrom` says when it was cut). Throws ProtocolError when
 * the cookie is already expired: Max-Age of 0 or less, an Expires not after the backend's own
 * Date, or a CouchDB timestamp older than `lifetime`.
 */
export function computeExpiry(input: ExpiryInput): Expiry {
  const { cookie, username, now } = input;
  const name = input.cookieName ?? 'AuthSession';
  const nowMs = now.getTime();
  const serverNow = parseDate(input.serverDate);
  // Converts a backend-clock instant into local time using the Date header, when present.
  const toLocal = (t: Date): Date | undefined => (serverNow ? dateAt(nowMs + (t.getTime() - serverNow.getTime())) : t);
  const minted = cookieTimestamp(cookie.value, username);
  const mintedLocal = minted ? toLocal(minted) : undefined;
  const issued = mintedLocal && mintedLocal.getTime() < nowMs ? mintedLocal : now;
  const expired = (what: string, todo = "check the backend's session timeout and its clock") =>
    new ProtocolError(`the backend's ${name} cookie is already expired when issued (${what}); refused, nothing written; ${todo}`);
  /** `seconds` from now, cut to the maximum. */
  const lasting = (seconds: number, source: ExpirySource): Expiry => {
    const clamped = seconds > MAX_LIFETIME_SECONDS;
    return { issued, expires: new Date(nowMs + Math.min(seconds, MAX_LIFETIME_SECONDS) * 1000), source, ...(clamped ? { clampedFrom: seconds } : {}) };
  };

  if (cookie.maxAge !== undefined) {
    if (!(cookie.maxAge > 0)) throw expired(`Max-Age=${cookie.maxAge}`);
    return lasting(cookie.maxAge, 'max-age');
  }
  if (cookie.expires) {
    const local = toLocal(cookie.expires);
    // Out of the date range once corrected: the claim is "practically forever".
    const left = local ? (local.getTime() - nowMs) / 1000 : Infinity;
    if (!(left > 0)) throw expired(`Expires ${cookie.expires.toUTCString()}, ${Math.round(-left)}s in the past${serverNow ? " by the backend's own Date header" : ''}`);
    return lasting(left, 'expires');
  }
  const lifetime = Math.min(input.lifetime, MAX_LIFETIME_SECONDS);
  if (mintedLocal) {
    const left = (issued.getTime() + lifetime * 1000 - nowMs) / 1000;
    if (!(left > 0)) throw expired(`issued ${Math.round((nowMs - issued.getTime()) / 1000)}s ago by its own timestamp, lifetime is ${lifetime}s`, "set lifetime to the backend's session timeout, or check the backend's clock");
    return { issued, expires: new Date(nowMs + left * 1000), source: 'cookie-timestamp' };
  }
  return lasting(input.lifetime, 'lifetime');
}

function parseDate(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  return dateAt(new Date(text).getTime());
}
