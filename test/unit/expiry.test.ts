/**
 * When a session cookie expires in local time: the order of evidence (Max-Age, Expires, the
 * timestamp inside a CouchDB AuthSession, the configured lifetime) and the backend clock skew.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SessionCookie } from '../../src/session/cookie.js';
import { ExitCode, ProtocolError } from '../../src/errors.js';
import { MAX_LIFETIME_SECONDS, computeExpiry, cookieTimestamp } from '../../src/session/expiry.js';

/** Builds a value shaped like CouchDB's AuthSession: base64url("user:HEXSECONDS:" + hmac bytes). */
function couchCookieValue(username: string, issued: Date, hex: (n: number) => string = (n) => n.toString(16).toUpperCase()): string {
  const seconds = Math.floor(issued.getTime() / 1000);
  // A made-up 20-byte HMAC that contains ':' (0x3a) bytes, NULs and high bytes, as real ones do.
  const hmac = Buffer.from([0x3a, 0x00, 0xff, 0x81, 0x3a, 0x10, 0x7f, 0x3a, 0xc3, 0xa9, 0x01, 0x02, 0x03, 0x3a, 0xfe, 0x20, 0x0a, 0x0d, 0x3a, 0x99]);
  return Buffer.concat([Buffer.from(`${username}:${hex(seconds)}:`, 'utf8'), hmac]).toString('base64url');
}

const ISSUED = new Date('2026-11-22T10:00:00Z');
const NOW = new Date('2026-11-22T10:02:00Z');
const LIFETIME = 600;

function plus(date: Date, seconds: number): Date {
  return new Date(date.getTime() + seconds * 1000);
}

describe('cookieTimestamp', () => {
  it('decodes the issue time from a CouchDB-shaped AuthSession value', () => {
    assert.equal(cookieTimestamp(couchCookieValue('admin', ISSUED), 'admin')?.toISOString(), ISSUED.toISOString());
  });

  it('decodes a lowercase hex timestamp too', () => {
    const value = couchCookieValue('admin', ISSUED, (n) => n.toString(16));
    assert.equal(cookieTimestamp(value, 'admin')?.toISOString(), ISSUED.toISOString());
  });

  it('decodes the timestamp for a non-ASCII username', () => {
    assert.equal(cookieTimestamp(couchCookieValue('j\u00fcrgen', ISSUED), 'j\u00fcrgen')?.toISOString(), ISSUED.toISOString());
  });

  it('returns undefined for a value issued to a different username', () => {
    const value = couchCookieValue('admin', ISSUED);
    assert.equal(cookieTimestamp(value, 'bob'), undefined);
    assert.equal(cookieTimestamp(value, 'adm'), undefined);
    assert.equal(cookieTimestamp(value, 'administrator'), undefined);
  });

  it('returns undefined for values that are not CouchDB-shaped', () => {
    for (const value of ['', 'opaque-session-id', '%24x', Buffer.from('hello world').toString('base64url'), Buffer.from('admin:not-hex:sig').toString('base64url'), Buffer.from('admin:').toString('base64url')]) {
      assert.equal(cookieTimestamp(value, 'admin'), undefined, `for ${JSON.stringify(value)}`);
    }
  });
});

describe('computeExpiry', () => {
  const minted = couchCookieValue('admin', ISSUED);

  it('prefers Max-Age over Expires and the cookie timestamp', () => {
    const cookie: SessionCookie = { value: minted, maxAge: 300, expires: plus(NOW, 5000) };
    const expiry = computeExpiry({ cookie, username: 'admin', lifetime: LIFETIME, now: NOW });
    assert.equal(expiry.source, 'max-age');
    assert.equal(expiry.expires.toISOString(), plus(NOW, 300).toISOString());
    assert.equal(expiry.issued.toISOString(), ISSUED.toISOString());
  });

  it('uses Expires when there is no Max-Age, over the cookie timestamp', () => {
    const cookie: SessionCookie = { value: minted, expires: plus(NOW, 5000) };
    const expiry = computeExpiry({ cookie, username: 'admin', lifetime: LIFETIME, now: NOW });
    assert.equal(expiry.source, 'expires');
    assert.equal(expiry.expires.toISOString(), plus(NOW, 5000).toISOString());
  });

  it('uses the cookie timestamp plus the lifetime when the cookie has no Max-Age or Expires', () => {
    const expiry = computeExpiry({ cookie: { value: minted }, username: 'admin', lifetime: LIFETIME, now: NOW });
    assert.equal(expiry.source, 'cookie-timestamp');
    assert.equal(expiry.issued.toISOString(), ISSUED.toISOString());
    assert.equal(expiry.expires.toISOString(), plus(ISSUED, LIFETIME).toISOString());
  });

  it('falls back to now plus the lifetime for an opaque cookie', () => {
    const expiry = computeExpiry({ cookie: { value: 'opaque-session-id' }, username: 'admin', lifetime: LIFETIME, now: NOW });
    assert.equal(expiry.source, 'lifetime');
    assert.equal(expiry.issued.toISOString(), NOW.toISOString());
    assert.equal(expiry.expires.toISOString(), plus(NOW, LIFETIME).toISOString());
  });

  it('falls back to now plus the lifetime when the cookie was minted for another user', () => {
    const expiry = computeExpiry({ cookie: { value: minted }, username: 'bob', lifetime: LIFETIME, now: NOW });
    assert.equal(expiry.source, 'lifetime');
  });

  it('corrects a cookie timestamp from a backend whose clock is an hour ahead, using its Date header', () => {
    const now = new Date('2026-11-22T10:00:00Z');
    const backendNow = plus(now, 3600);
    const expiry = computeExpiry({
      cookie: { value: couchCookieValue('admin', backendNow) },
      username: 'admin',
      lifetime: LIFETIME,
      now,
      serverDate: backendNow.toUTCString(),
    });
    assert.equal(expiry.source, 'cookie-timestamp');
    assert.equal(expiry.issued.toISOString(), now.toISOString());
    assert.equal(expiry.expires.toISOString(), plus(now, LIFETIME).toISOString());
  });

  it('corrects a cookie timestamp from a backend whose clock is an hour behind, using its Date header', () => {
    const now = new Date('2026-11-22T10:00:00Z');
    const backendNow = plus(now, -3600);
    const expiry = computeExpiry({
      cookie: { value: couchCookieValue('admin', backendNow) },
      username: 'admin',
      lifetime: LIFETIME,
      now,
      serverDate: backendNow.toUTCString(),
    });
    assert.equal(expiry.expires.toISOString(), plus(now, LIFETIME).toISOString());
  });

  it('corrects Expires from a backend whose clock is an hour ahead, using its Date header', () => {
    const now = new Date('2026-11-22T10:00:00Z');
    const backendNow = plus(now, 3600);
    const expiry = computeExpiry({
      cookie: { value: 'opaque', expires: plus(backendNow, 600) },
      username: 'admin',
      lifetime: LIFETIME,
      now,
      serverDate: backendNow.toUTCString(),
    });
    assert.equal(expiry.source, 'expires');
    assert.equal(expiry.expires.toISOString(), plus(now, 600).toISOString());
  });

  it('ignores a Date header that does not parse', () => {
    const expiry = computeExpiry({ cookie: { value: minted }, username: 'admin', lifetime: LIFETIME, now: NOW, serverDate: 'yesterday-ish' });
    assert.equal(expiry.expires.toISOString(), plus(ISSUED, LIFETIME).toISOString());
  });

  it('never puts the issue time after now', () => {
    const future = couchCookieValue('admin', plus(NOW, 3600));
    const expiry = computeExpiry({ cookie: { value: future }, username: 'admin', lifetime: LIFETIME, now: NOW });
    assert.equal(expiry.issued.toISOString(), NOW.toISOString());
  });

  it('refuses a cookie that is already expired when it arrives, saying why, with a ProtocolError (exit 76)', () => {
    const longAgo = couchCookieValue('admin', plus(NOW, -86400));
    const cases: [SessionCookie, RegExp, string?][] = [
      [{ value: 'opaque', maxAge: 0 }, /\(Max-Age=0\)/],
      [{ value: 'opaque', maxAge: -1 }, /\(Max-Age=-1\)/],
      [{ value: 'opaque', expires: plus(NOW, -60) }, /\(Expires .*, 60s in the past\)/],
      [{ value: 'opaque', expires: NOW }, /\(Expires .*, 0s in the past\)/],
      [{ value: longAgo }, /\(issued 86400s ago by its own timestamp, lifetime is 600s\); refused, nothing written; set lifetime to the backend's session timeout/],
    ];
    for (const [cookie, reason] of cases) {
      assert.throws(
        () => computeExpiry({ cookie, username: 'admin', lifetime: LIFETIME, now: NOW }),
        (error: unknown) => error instanceof ProtocolError && error.exitCode === ExitCode.PROTOCOL && reason.test(error.message) && /already expired when issued/.test(error.message) && !error.message.includes('\n'),
        JSON.stringify(cookie),
      );
    }
  });

  it("judges Expires by the backend's own Date header: ten minutes ahead of a clock an hour fast is already expired", () => {
    const backendNow = plus(NOW, 3600);
    assert.throws(
      () => computeExpiry({ cookie: { value: 'opaque', expires: plus(NOW, 600) }, username: 'admin', lifetime: LIFETIME, now: NOW, serverDate: backendNow.toUTCString() }),
      /already expired when issued \(Expires .*, 3000s in the past by the backend's own Date header\)/,
    );
  });

  it('names the configured cookie in the refusal', () => {
    assert.throws(() => computeExpiry({ cookie: { value: 'x', maxAge: 0 }, username: 'a', lifetime: 600, now: NOW, cookieName: 'SID' }), /the backend's SID cookie is already expired/);
  });

  it('cuts a lifetime longer than 30 days to 30 days and says what was claimed', () => {
    const cases: [SessionCookie, number][] = [
      [{ value: 'opaque', maxAge: MAX_LIFETIME_SECONDS + 1 }, MAX_LIFETIME_SECONDS + 1],
      [{ value: 'opaque', maxAge: 99999999999999 }, 99999999999999],
      [{ value: 'opaque', maxAge: Number.MAX_SAFE_INTEGER }, Number.MAX_SAFE_INTEGER],
      [{ value: 'opaque', expires: new Date('9999-12-31T23:59:59Z') }, (Date.parse('9999-12-31T23:59:59Z') - NOW.getTime()) / 1000],
    ];
    for (const [cookie, claimed] of cases) {
      const expiry = computeExpiry({ cookie, username: 'admin', lifetime: LIFETIME, now: NOW });
      assert.equal(expiry.expires.toISOString(), plus(NOW, MAX_LIFETIME_SECONDS).toISOString(), JSON.stringify(cookie));
      assert.equal(expiry.clampedFrom, claimed);
    }
    assert.equal(MAX_LIFETIME_SECONDS, 2_592_000);
  });

  it('does not mark a lifetime of exactly 30 days as cut', () => {
    const expiry = computeExpiry({ cookie: { value: 'opaque', maxAge: MAX_LIFETIME_SECONDS }, username: 'admin', lifetime: LIFETIME, now: NOW });
    assert.equal(expiry.clampedFrom, undefined);
    assert.equal(expiry.expires.toISOString(), plus(NOW, MAX_LIFETIME_SECONDS).toISOString());
  });

  it('turns no date, however far out, into an invalid date: every result prints as an ISO time', () => {
    const far = [Number.MAX_SAFE_INTEGER, 1e300, 8.64e12, 2 ** 53];
    const inputs: Parameters<typeof computeExpiry>[0][] = [
      ...far.map((maxAge) => ({ cookie: { value: 'opaque', maxAge }, username: 'admin', lifetime: LIFETIME, now: NOW })),
      { cookie: { value: 'opaque', expires: new Date(8.64e15) }, username: 'admin', lifetime: LIFETIME, now: NOW, serverDate: new Date(-8.64e15).toUTCString() },
      { cookie: { value: 'opaque', expires: new Date(8.64e15) }, username: 'admin', lifetime: LIFETIME, now: NOW, serverDate: 'Tue, 20 Apr -271821 00:00:00 GMT' },
      { cookie: { value: couchCookieValue('admin', new Date(0), () => 'FFFFFFFFFFFF') }, username: 'admin', lifetime: LIFETIME, now: NOW },
      { cookie: { value: couchCookieValue('admin', NOW) }, username: 'admin', lifetime: LIFETIME, now: NOW, serverDate: new Date(-8.64e15).toUTCString() },
      { cookie: { value: 'opaque' }, username: 'admin', lifetime: 1e300, now: NOW },
    ];
    for (const input of inputs) {
      const expiry = computeExpiry(input);
      assert.doesNotThrow(() => [expiry.issued.toISOString(), expiry.expires.toISOString()], JSON.stringify(input.cookie));
      assert.ok(expiry.expires.getTime() > NOW.getTime() && expiry.expires.getTime() <= plus(NOW, MAX_LIFETIME_SECONDS).getTime(), JSON.stringify(input.cookie));
      assert.ok(expiry.issued.getTime() <= NOW.getTime());
    }
  });

  it('reads no timestamp from a CouchDB-shaped value whose hex is past the date range', () => {
    assert.equal(cookieTimestamp(couchCookieValue('admin', new Date(0), () => 'FFFFFFFFFFFF'), 'admin'), undefined);
  });
});
