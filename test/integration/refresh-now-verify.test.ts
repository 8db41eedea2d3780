/**
 * `refresh-now` with a session's `verify_url` returns only once nginx serves the new include, so
 * `refresh-now && curl ...` never meets an old worker (real nginx, real pouchdb-server for the
 * logins; nginx proxies to the header echo, which shows the cookie nginx really sent).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { afterEach, describe, test } from 'node:test';
import { parseIncludeCookie } from '../../src/render/include.js';
import { startHeaderEcho, type Echoed } from '../helpers/header-echo.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

/** What the echo behind nginx saw, on a connection of its own (as a new `curl` would open). */
function echoed(url: string): Promise<Echoed> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(JSON.parse(body) as Echoed));
      })
      .on('error', reject);
  });
}

describe('refresh-now with verify_url', { skip }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function stackBehindEcho(): Promise<Stack> {
    const echo = await startHeaderEcho();
    cleanups.push(() => echo.stop());
    const stack = await startStack({ upstream: echo.url });
    cleanups.push(() => stack.stop());
    return stack;
  }

  test('the first request after it exits carries the new cookie, 50 times in a row', async () => {
    const stack = await stackBehindEcho();
    stack.session.verify_url = stack.nginx.probeUrl;
    await stack.writeConfig();
    for (let i = 1; i <= 50; i++) {
      const run = await stack.cli(['refresh-now', '--force']);
      assert.equal(run.code, 0, run.stderr);
      const cookie = parseIncludeCookie((await stack.includeBytes()).toString('utf8'), 'auth_cookie');
      assert.ok(cookie);
      const seen = await echoed(`${stack.nginx.url}/db/doc`);
      assert.equal(seen.cookie, cookie, `run ${i}: nginx sent an older cookie than the one refresh-now wrote`);
    }
  });

  test('exits 4 with one clear line when nginx does not show the new generation in time; the include is kept', async () => {
    const stack = await stackBehindEcho();
    // A location that never shows this session's generation.
    stack.session.verify_url = `${stack.nginx.url}/_session_refresher/generation/other`;
    (stack.config.daemon as Record<string, unknown>).verify_timeout = 1;
    await stack.writeConfig();
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 4, run.stderr);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /nginx was reloaded but .*generation\/other did not show generation 1 within 1s; check verify_url/);
    assert.ok(parseIncludeCookie((await stack.includeBytes()).toString('utf8'), 'auth_cookie'), 'the new include stays: nginx accepted it');
  });
});
