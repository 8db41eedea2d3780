/**
 * Which requests the 401 fallback endpoint refuses before replaying anything: it replays with a
 * service account's session, so it answers only nginx (the install's key) on loopback, takes the target from a path
 * and never from the request, and needs nginx's headers naming the session and generation.
 *
 * The requests are plain objects with the fields refuseReason reads; the full server is covered
 * by the integration tests.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { refuseReason } from '../../src/daemon/fallback.js';
import { GENERATION_HEADER, SESSION_HEADER } from '../../src/daemon/replay.js';
import { KEY_HEADER, keyChecker } from '../../src/nginx/fallback-key.js';

const KEY = 'a1'.repeat(32);
const fromNginx = keyChecker(KEY);

interface FakeRequest {
  url?: string | undefined;
  method?: string | undefined;
  headers?: IncomingHttpHeaders | undefined;
  remoteAddress?: string | undefined;
}

/** A request as nginx's @session_refresh location sends it, with `overrides` applied. */
function request(overrides: FakeRequest = {}): IncomingMessage {
  const fields: Required<FakeRequest> = {
    url: '/db/doc?rev=1-abc',
    method: 'GET',
    headers: { host: '127.0.0.1:8981', [KEY_HEADER]: KEY, [SESSION_HEADER]: 'couch', [GENERATION_HEADER]: '7' },
    remoteAddress: '127.0.0.1',
    ...overrides,
  };
  return { url: fields.url, method: fields.method, headers: fields.headers, socket: { remoteAddress: fields.remoteAddress } } as unknown as IncomingMessage;
}

describe('refuseReason', () => {
  it('lets a request from nginx on loopback through', () => {
    assert.equal(refuseReason(request(), false, fromNginx), undefined);
  });

  it('lets loopback clients through over IPv6 and IPv4-mapped IPv6', () => {
    assert.equal(refuseReason(request({ remoteAddress: '::1' }), false, fromNginx), undefined);
    assert.equal(refuseReason(request({ remoteAddress: '::ffff:127.0.0.1' }), false, fromNginx), undefined);
  });

  it('lets a request through when there is no remote address (a unix socket)', () => {
    assert.equal(refuseReason(request({ remoteAddress: undefined }), false, fromNginx), undefined);
  });

  it('refuses with 403 a request without the install\'s key, or with another key, before looking at anything else', () => {
    const { [KEY_HEADER]: _, ...withoutKey } = request().headers;
    const wrong = [undefined, '', KEY.slice(1), `${KEY}0`, KEY.toUpperCase(), 'b2'.repeat(32), [KEY, KEY]];
    for (const presented of wrong) {
      const headers = presented === undefined ? withoutKey : { ...withoutKey, [KEY_HEADER]: presented };
      const refused = refuseReason(request({ headers, url: 'http://evil.example/' }), false, fromNginx);
      assert.equal(refused?.status, 403, JSON.stringify(presented));
      assert.equal(refused.forbidden, 'key');
      assert.match(refused.reason, /fallback key/);
    }
  });

  it('refuses a client that is not on loopback with 403', () => {
    for (const remoteAddress of ['10.0.0.1', '::ffff:192.168.1.1', '2001:db8::1']) {
      const refused = refuseReason(request({ remoteAddress }), false, fromNginx);
      assert.equal(refused?.status, 403, remoteAddress);
      assert.match(refused.reason, /loopback/);
    }
  });

  it('lets a client that is not on loopback through when non-loopback clients are allowed', () => {
    assert.equal(refuseReason(request({ remoteAddress: '10.0.0.1' }), true, fromNginx), undefined);
  });

  it('refuses with 400 a request target that is not a path, so the request cannot choose the host', () => {
    for (const url of ['http://evil.example/db/doc', '//evil.example/db/doc', '', '*', 'db/doc', 'evil.example:443']) {
      const refused = refuseReason(request({ url }), false, fromNginx);
      assert.equal(refused?.status, 400, JSON.stringify(url));
      assert.match(refused.reason, /origin-form/);
    }
  });

  it('refuses with 400 a path with dot segments, which could climb out of the backend path prefix', () => {
    for (const url of ['/db/../_users', '/%2E%2e/_config', '/db\\..\\_users', '/./x', '/..%2f_config', '/db/%2e%2e%5c_users', '/db/..;/_config', '/db/%252e%252e/_config']) {
      const refused = refuseReason(request({ url }), false, fromNginx);
      assert.equal(refused?.status, 400, url);
      assert.match(refused.reason, /dot|"\."/);
    }
  });

  it('refuses with 400 a request without a target', () => {
    assert.equal(refuseReason(request({ url: undefined }), false, fromNginx)?.status, 400);
  });

  it('refuses CONNECT and TRACE with 405 naming the method', () => {
    for (const method of ['CONNECT', 'TRACE']) {
      const refused = refuseReason(request({ method }), false, fromNginx);
      assert.equal(refused?.status, 405, method);
      assert.match(refused.reason, new RegExp(`^${method} `));
    }
  });

  it('replays the methods CouchDB clients use', () => {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'COPY', 'OPTIONS']) {
      assert.equal(refuseReason(request({ method }), false, fromNginx), undefined, method);
    }
  });

  it('refuses with 400 a request without the session header, naming the header', () => {
    for (const session of [undefined, '']) {
      const refused = refuseReason(request({ headers: { host: 'x', [KEY_HEADER]: KEY, [GENERATION_HEADER]: '7', ...(session === undefined ? {} : { [SESSION_HEADER]: session }) } }), false, fromNginx);
      assert.equal(refused?.status, 400);
      assert.ok(refused.reason.includes(SESSION_HEADER), refused.reason);
    }
  });

  it('refuses with 400 a generation that is not a whole number, naming the header', () => {
    for (const generation of ['abc', '-1', '1.5', '7 ', '0x10', '', '1, 2']) {
      const refused = refuseReason(request({ headers: { [KEY_HEADER]: KEY, [SESSION_HEADER]: 'couch', [GENERATION_HEADER]: generation } }), false, fromNginx);
      assert.equal(refused?.status, 400, JSON.stringify(generation));
      assert.ok(refused.reason.includes(GENERATION_HEADER), refused.reason);
    }
  });

  it('lets a request without a generation through (the replay then uses the current cookie)', () => {
    assert.equal(refuseReason(request({ headers: { [KEY_HEADER]: KEY, [SESSION_HEADER]: 'couch' } }), false, fromNginx), undefined);
  });

  it('lets generation 0 through (nginx still serving the placeholder include)', () => {
    assert.equal(refuseReason(request({ headers: { [KEY_HEADER]: KEY, [SESSION_HEADER]: 'couch', [GENERATION_HEADER]: '0' } }), false, fromNginx), undefined);
  });
});
