/**
 * Picking the session cookie out of Set-Cookie headers and deciding whether its value may go
 * into an nginx include (pure).
 *
 * nginx interpolates `$name` even inside a quoted string and has no way to escape `$`, so a
 * cookie value of `$http_authorization` would make nginx send each client's credentials
 * upstream. Values are therefore whitelisted, never escaped: RFC 6265 cookie-octets minus `$`
 * and the characters nginx's parser treats specially (`{`, `}`), within a sane length.
 */
import { parseSetCookie } from 'set-cookie-parser';
import { CookieRefusedError, ProtocolError } from '../errors.js';

/**
 * Longest `Name=value` token nginx takes: it reads its configuration through a 4096-byte buffer
 * and refuses a token of 4095 bytes or more ("too long parameter"). RFC 6265 asks user agents
 * to keep 4096 bytes per cookie, so this is the tighter bound.
 */
export const MAX_NGINX_TOKEN = 4094;

/** Longest value accepted for a cookie called `cookieName`. */
export function maxCookieValueLength(cookieName: string): number {
  return MAX_NGINX_TOKEN - cookieName.length - 1;
}

/** Longest value accepted for the default cookie name, AuthSession (4082 bytes). */
export const MAX_COOKIE_VALUE_LENGTH = maxCookieValueLength('AuthSession');

/** The session cookie found in a response: its raw (undecoded) value and expiry attributes. */
export interface SessionCookie {
  value: string;
  /** Max-Age in seconds, when the cookie has one. */
  maxAge?: number;
  /** Expires, when the cookie has one (and it parsed as a date). */
  expires?: Date;
}

/**
 * True for the bytes we accept in a value: RFC 6265 cookie-octet
 * (%x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E) without `$` (%x24), `{` (%x7B) or `}` (%x7D).
 */
export function isAllowedCookieOctet(code: number): boolean {
  if (code < 0x21 || code > 0x7e) return false;
  return code !== 0x22 && code !== 0x2c && code !== 0x3b && code !== 0x5c && code !== 0x24 && code !== 0x7b && code !== 0x7d;
}

/** Throws CookieRefusedError unless every character of `value` is allowed. Never echoes the value. */
export function assertSafeCookieValue(value: string, cookieName: string): void {
  if (value.length === 0) throw new CookieRefusedError(`the backend's ${cookieName} cookie is empty; refused, nothing written`);
  const max = maxCookieValueLength(cookieName);
  if (value.length > max) {
    throw new CookieRefusedError(`the backend's ${cookieName} cookie is ${value.length} bytes, over the ${max}-byte limit nginx can hold in one token; refused, nothing written`);
  }
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (!isAllowedCookieOctet(code)) {
      throw new CookieRefusedError(
        `the backend's ${cookieName} cookie has a forbidden character (${describeChar(code)}) at position ${i + 1}; ` +
          'only RFC 6265 cookie-octets without $ { } are written into nginx config; refused, nothing written',
      );
    }
  }
}

function describeChar(code: number): string {
  const hex = `0x${code.toString(16).padStart(2, '0')}`;
  return code >= 0x21 && code <= 0x7e ? `'${String.fromCharCode(code)}', ${hex}` : hex;
}

/**
 * Finds the one cookie named `cookieName` in `setCookie` headers and validates its value.
 * An unparseable Expires or Max-Age is ignored silently (the parser would otherwise print the
 * backend's text on stderr), and the expiry then comes from the next source of evidence.
 * None -> ProtocolError; several -> CookieRefusedError (ambiguous); bad value -> CookieRefusedError.
 */
export function pickSessionCookie(setCookie: readonly string[], cookieName: string): SessionCookie {
  const matching = parseSetCookie([...setCookie], { decodeValues: false, split: false, silent: true }).filter((c) => c.name === cookieName);
  if (matching.length === 0) {
    throw new ProtocolError(`the backend answered the login with success but set no ${cookieName} cookie; is this a CouchDB-style /_session endpoint?`);
  }
  if (matching.length > 1) throw new CookieRefusedError(`the backend set ${matching.length} ${cookieName} cookies in one response; ambiguous, refused, nothing written`);
  const cookie = matching[0]!;
  assertSafeCookieValue(cookie.value, cookieName);
  const out: SessionCookie = { value: cookie.value };
  if (typeof cookie.maxAge === 'number' && Number.isFinite(cookie.maxAge)) out.maxAge = cookie.maxAge;
  if (cookie.expires instanceof Date && !Number.isNaN(cookie.expires.getTime())) out.expires = cookie.expires;
  return out;
}
