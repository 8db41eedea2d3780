/**
 * Which cookie values may reach the nginx include, and how the session cookie is picked out of
 * a login response's Set-Cookie headers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CookieRefusedError, ExitCode, ProtocolError } from '../../src/errors.js';
import { MAX_COOKIE_VALUE_LENGTH, assertSafeCookieValue, isAllowedCookieOctet, pickSessionCookie } from '../../src/session/cookie.js';

/** RFC 6265 section 4.1.1: cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E. */
function isRfc6265CookieOctet(code: number): boolean {
  const ranges: [number, number][] = [
    [0x21, 0x21],
    [0x23, 0x2b],
    [0x2d, 0x3a],
    [0x3c, 0x5b],
    [0x5d, 0x7e],
  ];
  return ranges.some(([low, high]) => code >= low && code <= high);
}

function assertRefused(fn: () => unknown, secret?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CookieRefusedError, `expected CookieRefusedError, got ${String(error)}`);
    assert.equal(error.exitCode, ExitCode.COOKIE_REFUSED);
    if (secret !== undefined && secret.length > 1) assert.ok(!error.message.includes(secret), `message echoes the value: ${error.message}`);
    return true;
  });
}

describe('isAllowedCookieOctet', () => {
  it('accepts exactly the RFC 6265 cookie-octets minus $ { } over all byte values', () => {
    const mismatches: string[] = [];
    for (let code = 0; code <= 255; code++) {
      const expected = isRfc6265CookieOctet(code) && code !== 0x24 && code !== 0x7b && code !== 0x7d;
      if (isAllowedCookieOctet(code) !== expected) mismatches.push(`0x${code.toString(16)} expected ${expected}`);
    }
    assert.deepEqual(mismatches, []);
  });
});

describe('assertSafeCookieValue', () => {
  const refused: [string, string][] = [
    ['an empty value', ''],
    [`a value of ${MAX_COOKIE_VALUE_LENGTH + 1} characters`, 'a'.repeat(MAX_COOKIE_VALUE_LENGTH + 1)],
    ['an nginx variable reference', '$http_authorization'],
    ['a double quote', 'abc"def'],
    ['a backslash', 'abc\\def'],
    ['a semicolon', 'abc;def'],
    ['a comma', 'abc,def'],
    ['a space', 'abc def'],
    ['a tab', 'abc\tdef'],
    ['a carriage return', 'abc\rdef'],
    ['a line feed', 'abc\ndef'],
    ['a NUL', 'abc\0def'],
    ['a non-ASCII letter', 'caf\u00e9'],
    ['an opening brace', 'abc{def'],
    ['a closing brace', 'abc}def'],
  ];
  for (const [what, value] of refused) {
    it(`refuses ${what}`, () => assertRefused(() => assertSafeCookieValue(value, 'AuthSession'), value));
  }

  it('names the position and the character code of the first forbidden character', () => {
    assert.throws(() => assertSafeCookieValue('abc$def', 'AuthSession'), /position 4/);
    assert.throws(() => assertSafeCookieValue('abc$def', 'AuthSession'), /0x24/);
  });

  it('accepts a CouchDB-style base64url value', () => {
    const value = Buffer.from('admin:6745A1B2:\u0001\u00ff\u003a binary hmac', 'latin1').toString('base64url');
    assert.doesNotThrow(() => assertSafeCookieValue(value, 'AuthSession'));
    assert.doesNotThrow(() => assertSafeCookieValue('YWRtaW46NjVBMUIyQzM6kL3d-_Zx9Q', 'AuthSession'));
  });

  it(`accepts a value of exactly ${MAX_COOKIE_VALUE_LENGTH} characters`, () => {
    assert.doesNotThrow(() => assertSafeCookieValue('a'.repeat(MAX_COOKIE_VALUE_LENGTH), 'AuthSession'));
  });

  it('accepts every allowed punctuation character', () => {
    assert.doesNotThrow(() => assertSafeCookieValue("!#%&'()*+-./:<=>?@[]^_`|~", 'AuthSession'));
  });
});

describe('pickSessionCookie', () => {
  it('picks the AuthSession cookie among several Set-Cookie headers', () => {
    const cookie = pickSessionCookie(
      ['theme=dark; Path=/', 'AuthSession=YWRtaW46NjVBMUIyQzM6kL3d-_Zx9Q; Version=1; Path=/; HttpOnly', 'csrf=abc123; Path=/; Secure'],
      'AuthSession',
    );
    assert.deepEqual(cookie, { value: 'YWRtaW46NjVBMUIyQzM6kL3d-_Zx9Q' });
  });

  it('picks the cookie by the configured name', () => {
    const cookie = pickSessionCookie(['AuthSession=one; Path=/', 'SessionId=two; Path=/'], 'SessionId');
    assert.equal(cookie.value, 'two');
  });

  it('keeps a percent-encoded value exactly as sent, without url-decoding it', () => {
    const cookie = pickSessionCookie(['AuthSession=%24x; Path=/'], 'AuthSession');
    assert.equal(cookie.value, '%24x');
  });

  it('reads Max-Age in seconds', () => {
    const cookie = pickSessionCookie(['AuthSession=abc; Max-Age=600; Path=/'], 'AuthSession');
    assert.equal(cookie.maxAge, 600);
    assert.equal(cookie.expires, undefined);
  });

  it('reads Expires as a date', () => {
    const cookie = pickSessionCookie(['AuthSession=abc; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/'], 'AuthSession');
    assert.ok(cookie.expires instanceof Date);
    assert.equal(cookie.expires.toISOString(), '2026-10-21T07:28:00.000Z');
    assert.equal(cookie.maxAge, undefined);
  });

  it('reads both Max-Age and Expires when both are present', () => {
    const cookie = pickSessionCookie(['AuthSession=abc; Max-Age=300; Expires=Wed, 21 Oct 2026 07:28:00 GMT'], 'AuthSession');
    assert.equal(cookie.maxAge, 300);
    assert.equal(cookie.expires?.toISOString(), '2026-10-21T07:28:00.000Z');
  });

  it('ignores an Expires that is not a date', () => {
    const cookie = pickSessionCookie(['AuthSession=abc; Expires=soon'], 'AuthSession');
    assert.equal(cookie.expires, undefined);
  });

  it('throws ProtocolError (exit code 76) when no AuthSession cookie is set', () => {
    for (const headers of [[], ['theme=dark; Path=/'], ['authsession=abc; Path=/']]) {
      assert.throws(
        () => pickSessionCookie(headers, 'AuthSession'),
        (error: unknown) => error instanceof ProtocolError && error.exitCode === ExitCode.PROTOCOL && error.exitCode === 76 && /AuthSession/.test(error.message),
      );
    }
  });

  it('throws CookieRefusedError (exit code 65) when two AuthSession cookies are set', () => {
    assertRefused(() => pickSessionCookie(['AuthSession=first; Path=/', 'AuthSession=second; Path=/'], 'AuthSession'));
  });

  it('refuses a hostile AuthSession value without echoing it', () => {
    assertRefused(() => pickSessionCookie(['AuthSession=$http_authorization; Path=/'], 'AuthSession'), '$http_authorization');
  });

  it('refuses an empty AuthSession value', () => {
    assertRefused(() => pickSessionCookie(['AuthSession=; Path=/'], 'AuthSession'));
  });
});
