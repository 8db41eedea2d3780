/**
 * When a session cookie was issued and when it expires, in local clock time (pure).
 *
 * Order of evidence: Max-Age (relative, so immune to clock skew); else Expires; else the
 * timestamp CouchDB puts inside AuthSession (base64url of "user:HEXSECONDS:hmac") plus the
 * configured lifetime; else now plus the lifetime. Absolute backend times (Expires, the cookie
 * timestamp) are corrected by the backend's Date header when it has one, so a backend whose clock
 * is off by minutes still yields a sane local expiry.
 */
import type { SessionCookie } from './cookie.js';

export type ExpirySource = 'max-age' | 'expires' | 'cookie-timestamp' | 'lifetime';

export interface Expiry {
  issued: Date;
  expires: Date;
  source: ExpirySource;
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
  const seconds = Number.parseInt(match[1]!, 16);
  return Number.isFinite(seconds) ? new Date(seconds * 1000) : undefined;
}

/** Computes issue and expiry times in the local clock. Expiry is never before `now`. */
export function computeExpiry(input: ExpiryInput): Expiry {
  const { cookie, username, lifetime, now } = input;
  const serverNow = parseDate(input.serverDate);
  // Converts a backend-clock instant into local time using the Date header, when present.
  const toLocal = (t: Date): Date => (serverNow ? new Date(now.getTime() + (t.getTime() - serverNow.getTime())) : t);
  const minted = cookieTimestamp(cookie.value, username);
  const issued = minted ? clampNotAfter(toLocal(minted), now) : now;

  if (cookie.maxAge !== undefined) return { issued, expires: new Date(now.getTime() + Math.max(0, cookie.maxAge) * 1000), source: 'max-age' };
  if (cookie.expires) return { issued, expires: clampNotBefore(toLocal(cookie.expires), now), source: 'expires' };
  if (minted) return { issued, expires: clampNotBefore(new Date(issued.getTime() + lifetime * 1000), now), source: 'cookie-timestamp' };
  return { issued, expires: new Date(now.getTime() + lifetime * 1000), source: 'lifetime' };
}

function parseDate(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function clampNotAfter(t: Date, limit: Date): Date {
  return t.getTime() > limit.getTime() ? limit : t;
}

function clampNotBefore(t: Date, limit: Date): Date {
  return t.getTime() < limit.getTime() ? limit : t;
}
