/**
 * What a replayed request carries to the backend and what comes back to the client: end-to-end
 * headers only, never the client's credentials or the backend's Set-Cookie, and always the
 * configured backend as the target whatever the request path says.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { GENERATION_HEADER, SESSION_HEADER, hasDotSegment, replayRequestHeaders, replayResponseHeaders, replayTarget } from '../../src/daemon/replay.js';

const SERVICE_COOKIE = 'AuthSession=c2VydmljZTo2NzAwMDAwMDpzaWc';
const TARGET = new URL('http://couch:5984/db/doc');

/** End-to-end request headers a client may send; all must reach the backend unchanged. */
const END_TO_END: IncomingHttpHeaders = {
  'content-type': 'application/json',
  'content-length': '17',
  accept: 'application/json',
  'if-match': '"1-abc"',
  'x-custom': 'kept',
};

describe('replayRequestHeaders', () => {
  it('sends the end-to-end headers, the backend as host and the session cookie, and nothing else', () => {
    const incoming: IncomingHttpHeaders = {
      ...END_TO_END,
      host: 'front.example',
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      trailer: 'x-checksum',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
      'proxy-connection': 'keep-alive',
      cookie: 'AuthSession=client-cookie; theme=dark',
      authorization: 'Basic Y2xpZW50OnNlY3JldA==',
      [SESSION_HEADER]: 'couch',
      [GENERATION_HEADER]: '7',
    };
    assert.deepEqual(replayRequestHeaders(incoming, TARGET, SERVICE_COOKIE), { ...END_TO_END, host: 'couch:5984', cookie: SERVICE_COOKIE });
  });

  it('drops the headers the Connection header names, whatever their case and spacing', () => {
    const incoming: IncomingHttpHeaders = { ...END_TO_END, connection: 'Keep-Alive,  X-Hop-One , x-hop-two', 'x-hop-one': '1', 'x-hop-two': '2' };
    const out = replayRequestHeaders(incoming, TARGET, SERVICE_COOKIE);
    assert.equal(out['x-hop-one'], undefined);
    assert.equal(out['x-hop-two'], undefined);
    assert.equal(out['x-custom'], 'kept');
  });

  it('never forwards the client cookie or authorization, even without any hop-by-hop headers', () => {
    const out = replayRequestHeaders({ cookie: 'AuthSession=client', authorization: 'Bearer client-token' }, TARGET, SERVICE_COOKIE);
    assert.deepEqual(out, { host: 'couch:5984', cookie: SERVICE_COOKIE });
  });

  it('names the target host with its port only when the port is not the default', () => {
    assert.equal(replayRequestHeaders({}, new URL('https://couch.example:443/db'), SERVICE_COOKIE).host, 'couch.example');
    assert.equal(replayRequestHeaders({}, new URL('https://couch.example:6984/db'), SERVICE_COOKIE).host, 'couch.example:6984');
    assert.equal(replayRequestHeaders({}, new URL('http://[::1]:5984/db'), SERVICE_COOKIE).host, '[::1]:5984');
  });

  it('keeps repeated end-to-end headers as lists', () => {
    const out = replayRequestHeaders({ 'x-forwarded-for': '10.0.0.1', 'x-list': ['a', 'b'] } as IncomingHttpHeaders, TARGET, SERVICE_COOKIE);
    assert.deepEqual(out['x-list'], ['a', 'b']);
    assert.equal(out['x-forwarded-for'], '10.0.0.1');
  });
});

describe('replayResponseHeaders', () => {
  it('passes the backend end-to-end headers through and drops hop-by-hop headers and every Set-Cookie', () => {
    const kept: IncomingHttpHeaders = {
      'content-type': 'application/json',
      'content-length': '42',
      etag: '"2-def"',
      'cache-control': 'must-revalidate',
      'x-couch-request-id': 'r1',
    };
    const incoming: IncomingHttpHeaders = {
      ...kept,
      connection: 'close, x-internal',
      'x-internal': 'backend-only',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      trailer: 'x-checksum',
      upgrade: 'h2c',
      'proxy-authenticate': 'Basic realm="backend"',
      'set-cookie': ['AuthSession=renewed-service-cookie; Version=1; Path=/; HttpOnly', 'other=1'],
    };
    assert.deepEqual(replayResponseHeaders(incoming), kept);
  });

  it('drops a single Set-Cookie too', () => {
    assert.deepEqual(replayResponseHeaders({ 'set-cookie': ['AuthSession=x'], 'content-type': 'text/plain' }), { 'content-type': 'text/plain' });
  });
});

describe('replayTarget', () => {
  it('appends the request path and query to the backend origin', () => {
    assert.equal(replayTarget('http://couch:5984', '/db/doc?rev=1').href, 'http://couch:5984/db/doc?rev=1');
  });

  it('puts the base URL path prefix in front of the request path', () => {
    assert.equal(replayTarget('http://h/couch/', '/db/doc').href, 'http://h/couch/db/doc');
    assert.equal(replayTarget('http://h/couch', '/db/doc').href, 'http://h/couch/db/doc');
  });

  it('takes no query from the base URL and adds none when the request has none', () => {
    const url = replayTarget('http://couch:5984/?from=config', '/db/doc');
    assert.equal(url.search, '');
    assert.equal(url.href, 'http://couch:5984/db/doc');
  });

  it('keeps the query exactly as received, percent-encoding included', () => {
    const query = '?key=%22a%2Fb%22&startkey=%5B1%2C2%5D&q=a+b%20c&empty=&flag';
    const url = replayTarget('http://couch:5984', `/db/_design/d/_view/v${query}`);
    assert.equal(url.search, query);
    assert.equal(url.href, `http://couch:5984/db/_design/d/_view/v${query}`);
  });

  it('keeps an encoded slash in a document id encoded', () => {
    assert.equal(replayTarget('http://h/couch/', '/db/a%2Fb?rev=1-x').href, 'http://h/couch/db/a%2Fb?rev=1-x');
  });

  it('keeps the query after the first question mark whole, further question marks included', () => {
    assert.equal(replayTarget('http://couch:5984', '/db/doc?a=1?b=2').search, '?a=1?b=2');
  });

  it('never lets the request path choose the host', () => {
    for (const path of ['/x@evil.example/', '//evil.example/x', '/\\\\evil.example/x', '/:@evil.example:80/', '/db?x=@evil.example']) {
      for (const base of ['http://couch:5984', 'https://h/couch/']) {
        const url = replayTarget(base, path);
        const expected = new URL(base);
        assert.equal(url.host, expected.host, `${base} + ${path} went to ${url.href}`);
        assert.equal(url.protocol, expected.protocol, `${base} + ${path} went to ${url.href}`);
        assert.equal(url.username, '');
        assert.equal(url.password, '');
      }
    }
  });

  it('refuses a request path with dot segments (also %2e or backslashes) instead of resolving it out of the prefix', () => {
    for (const path of ['/..//evil', '/%2e%2e/_users', '/db\\..\\..\\_users', '/db/../../_config', '/./_config', '/.\t./x']) {
      assert.equal(hasDotSegment(path), true, path);
      assert.throws(() => replayTarget('http://h/couch/', path), RangeError, path);
    }
    for (const path of ['/db/doc', '/a.b/..c/d.', '/_config?x=/../']) assert.equal(hasDotSegment(path), false, path);
  });

  it('finds a dot segment in every spelling: %2e in any case, double-encoded or overlong, between /, \\, %2f or %5c, or before ; ? #', () => {
    const dots = ['.', '..', '%2e', '%2E', '%2e%2e', '%2E%2e', '.%2e', '%2E.', '%252e%252e', '%252E.', '%25252e', '%c0%ae%c0%ae', '%u002e%u002e'];
    const before = ['/', '\\', '%2f', '%2F', '%5c', '%5C', '%252f', '%c0%af'];
    const after = ['/', '\\', '%2f', '%2F', '%5c', '%5C', '%252f', '', ';x=1', '%3b', '%3f', '%3F', '%23'];
    let checked = 0;
    for (const dot of dots) {
      for (const b of before) {
        for (const a of after) {
          const path = `/db${b}${dot}${a}${a === '' ? '' : '_config'}`;
          assert.equal(hasDotSegment(path), true, path);
          assert.throws(() => replayTarget('http://h/couch/', path), RangeError, path);
          checked++;
        }
      }
    }
    assert.equal(checked, dots.length * before.length * after.length);
  });

  it('refuses a path whose %25 layers go deeper than it peels off (eight), whatever lies beneath', () => {
    assert.equal(hasDotSegment(`/db/%${'25'.repeat(12)}2e/x`), true);
    assert.equal(hasDotSegment(`/db/%${'25'.repeat(12)}41/x`), true);
    assert.equal(hasDotSegment(`/db/%${'25'.repeat(6)}41/x`), false, 'six layers over an "A" are peeled and found harmless');
  });

  it('lets through names that merely contain dots or encoded characters', () => {
    for (const path of ['/db/a.b', '/db/..c', '/db/.x', '/db/x.', '/db/...', '/db/a%2Fb', '/db/a%2fb%2fc', '/db/100%25', '/db/%2e%2ex', '/db/x%2e%2e', '/db/a;b', '/db/doc?rev=%2e%2e', '/db/_design/d/_view/v?startkey=%22..%22']) {
      assert.equal(hasDotSegment(path), false, path);
    }
  });
});
