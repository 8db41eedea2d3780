/**
 * The Authorization-header rules shared by the token kinds (pure): the whitelist a value passes
 * before nginx sees it, what a 401's `WWW-Authenticate` says, and an expiry from a lifetime.
 *
 * A token goes into the include between double quotes, where nginx still interpolates `$name`;
 * so, as for cookies, values are whitelisted, never escaped. RFC 6750's b64token and RFC 7235's
 * token68 are the same alphabet (letters, digits, `-._~+/`, then `=` padding), which holds none
 * of `$`, quotes, `\`, braces, spaces or control characters.
 */
import { CookieRefusedError } from '../errors.js';
import { MAX_NGINX_TOKEN } from '../session/cookie.js';
import { MAX_LIFETIME_SECONDS, type Expiry, type ExpirySource } from '../session/expiry.js';
import type { Challenge } from './kind.js';

/** RFC 6750 b64token = RFC 7235 token68. */
export const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*$/;

/**
 * Throws CookieRefusedError (exit 65) unless `value` is `<scheme> <token68>` and fits one nginx
 * token. `what` names the value in the message ("the access token"); the value is never echoed.
 */
export function assertSafeAuthorization(value: string, scheme: 'Bearer' | 'Basic', what: string): void {
  const prefix = `${scheme} `;
  if (!value.startsWith(prefix)) throw new CookieRefusedError(`${what} is not a ${scheme} credential; refused, nothing written`);
  const token = value.slice(prefix.length);
  if (token.length === 0) throw new CookieRefusedError(`${what} is empty; refused, nothing written`);
  const max = MAX_NGINX_TOKEN - prefix.length;
  if (token.length > max) throw new CookieRefusedError(`${what} is ${token.length} bytes, over the ${max}-byte limit nginx can hold in one token; refused, nothing written`);
  if (!TOKEN68.test(token)) {
    const at = [...token].findIndex((c, i) => !/[A-Za-z0-9._~+/=-]/.test(c) || (c === '=' && !/^=*$/.test(token.slice(i))));
    const code = token.charCodeAt(at);
    const shown = code >= 0x21 && code <= 0x7e && code !== 0x24 ? `'${String.fromCharCode(code)}', ` : '';
    throw new CookieRefusedError(
      `${what} has a character outside RFC 6750 b64token (${shown}0x${code.toString(16).padStart(2, '0')}) at position ${at + 1}; only letters, digits, -._~+/ and trailing = are written into nginx config; refused, nothing written`,
    );
  }
}

/**
 * What a 401's `WWW-Authenticate` says of a Bearer token (RFC 6750 3.1): `dead` when a Bearer
 * challenge carries `error="invalid_token"` (expired, revoked, malformed, signed with a key the
 * server no longer has); `authorization` for `insufficient_scope` (the token is fine, the
 * request needs more); `unknown` otherwise (no challenge, another error, another scheme).
 */
export function bearerChallenge(wwwAuthenticate: string | undefined): Challenge {
  if (!wwwAuthenticate) return 'unknown';
  // Challenges are separated by commas too, so look for the parameter after a Bearer scheme.
  const error = /(?:^|,)\s*Bearer\b[^]*?\berror\s*=\s*"?([A-Za-z_]+)"?/i.exec(wwwAuthenticate)?.[1]?.toLowerCase();
  if (error === 'invalid_token') return 'dead';
  if (error === 'insufficient_scope') return 'authorization';
  return 'unknown';
}

/** An expiry `seconds` after `now`, cut to MAX_LIFETIME_SECONDS (`clampedFrom` says so). */
export function expiryIn(seconds: number, now: Date, source: ExpirySource): Expiry {
  const clamped = seconds > MAX_LIFETIME_SECONDS;
  return { issued: now, expires: new Date(now.getTime() + Math.min(seconds, MAX_LIFETIME_SECONDS) * 1000), source, ...(clamped ? { clampedFrom: seconds } : {}) };
}
