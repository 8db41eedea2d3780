/**
 * A request whose path has a "." or ".." segment in some spelling, sent by a client through the
 * real nginx to the real pouchdb-server: the backend answers 401 (the session was invalidated),
 * nginx hands the request to the daemon's fallback, and the fallback must refuse it with 400
 * instead of replaying it with the service session. A hop that decodes %2F or %5C before it
 * normalises would otherwise resolve "/_config/..%2f_users" out of where the client may go.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

/** GET `path` through nginx exactly as written: fetch() would normalise the dots away first. */
function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const SPELLINGS = [
  '/_config/..%2f_users',
  '/_config/..%2F_users',
  '/_config/..%5c_users',
  '/_config/..\\_users',
  '/_config/%2e%2e/_users',
  '/_config/%2E%2e%2f_users',
  '/_config/.%2e%5C_users',
  '/_config/%2e/couch_httpd_auth',
  '/_config/.%2fcouch_httpd_auth',
  '/_config/%252e%252e/_users',
  '/_config/..;/_users',
  '/_config/couch_httpd_auth/..%2f',
];

describe('a dot segment in any spelling, through nginx to the fallback', { skip }, () => {
  let stack: Stack;
  let daemon: Daemon;
  before(async () => {
    stack = await startStack({ fallback: true });
    daemon = await startDaemon(stack.configPath);
    await stack.nginx.waitForGeneration(1);
    // Every request now gets 401 from the backend, so nginx sends each one to the fallback.
    await stack.couch.rotateSecret();
  });
  after(async () => {
    await daemon?.stop();
    await stack?.stop();
  });

  test('is refused with 400 by the fallback, never replayed, and costs no login; a plain path is still replayed', async () => {
    await stack.couch.settle();
    const logins = stack.couch.logins();
    for (const path of SPELLINGS) {
      const mark = daemon.mark();
      const res = await rawGet(stack.nginx.port, path);
      assert.equal(res.status, 400, `${path}: ${res.body}`);
      assert.match(res.body, /"error":"bad_request".*segment/, `${path}: the fallback's refusal reached the client`);
      const line = await daemon.waitForMsgAfter(mark, /fallback request refused/);
      assert.equal(line.status, 400, path);
    }
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), logins, 'a refused request does not log in');
    for (const path of SPELLINGS) {
      const seen = stack.couch.requestLog().filter((l) => l.includes(` ${path} `));
      assert.equal(seen.length, 1, `${path} reached the backend once (nginx's request), never as a replay:\n${seen.join('\n')}`);
    }

    // The control: the same invalidated session, a path without dot segments, is replayed.
    const control = await rawGet(stack.nginx.port, '/_config/couch_httpd_auth');
    assert.equal(control.status, 200, control.body);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), logins + 1);
  });
});
