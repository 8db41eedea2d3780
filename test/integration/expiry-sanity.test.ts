/**
 * Expiry values from the backend are not trusted blindly. A cookie that is already expired when
 * it arrives (Max-Age=0 or below, Expires in the past) is refused as a protocol error (exit 76)
 * instead of being written and replaced again every second; a lifetime beyond 30 days, up to
 * one past JavaScript's date range, is cut to 30 days with a warning instead of crashing.
 *
 * The logins go to SCRIPTED backends (no real server sends these cookies on demand): for
 * refresh-now a raw one while nginx proxies to the real pouchdb-server; for the daemon a
 * scripted CouchDB that nginx also proxies to, so a request can reach the 401 fallback.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { placeholderInclude, skipWithoutNginx } from '../helpers/nginx.js';
import { rawResponse, startScriptedBackend, type ScriptedBackend } from '../helpers/scripted-backend.js';
import { startScriptedCouch, type ScriptedCouch } from '../helpers/scripted-couch.js';
import { startScriptedStack, type ScriptedStack } from '../helpers/scripted-stack.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();
const THIRTY_DAYS = 2_592_000;
const OK_BODY = '{"ok":true,"name":"admin","roles":["_admin"]}';
const COOKIE = 'YWRtaW46c2NyaXB0ZWQ6c2ln';

describe('refresh-now with a cookie whose expiry makes no sense (scripted login backend)', { skip }, () => {
  let stack: Stack;
  let scripted: ScriptedBackend;
  let good: Buffer;

  before(async () => {
    stack = await startStack();
    const first = await stack.cli(['refresh-now']);
    assert.equal(first.code, 0, first.stderr);
    await stack.nginx.waitForGeneration(1);
    scripted = await startScriptedBackend(() => 'stall');
    Object.assign(stack.session, { url: scripted.url, retries: 2 });
    await stack.writeConfig();
  });
  beforeEach(async () => {
    good = await stack.includeBytes();
  });
  after(async () => {
    await scripted?.stop();
    await stack?.stop();
  });

  const date = () => `Date: ${new Date().toUTCString()}`;
  for (const { name, attributes, reason } of [
    { name: 'Max-Age=0', attributes: '; Max-Age=0', reason: /\(Max-Age=0\)/ },
    { name: 'Max-Age=-1', attributes: '; Max-Age=-1', reason: /\(Max-Age=-1\)/ },
    { name: 'an Expires an hour in the past', attributes: `; Expires=${new Date(Date.now() - 3_600_000).toUTCString()}`, reason: /\(Expires .*, 36\d\ds in the past by the backend's own Date header\)/ },
  ]) {
    test(`a cookie with ${name} is refused with exit 76 and one line after one request; include and nginx untouched`, async () => {
      scripted.setScript(() => rawResponse('200 OK', [date(), `Set-Cookie: AuthSession=${COOKIE}; Version=1; Path=/; HttpOnly${attributes}`], OK_BODY));
      const requests = scripted.requests();
      const reloads = await stack.nginx.reloads();

      const run = await stack.cli(['refresh-now', '--force']);
      assert.equal(run.code, 76, run.stderr);
      const lines = run.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, /^session-refresher: couch: the backend's AuthSession cookie is already expired when issued /);
      assert.match(lines[0]!, reason);
      assert.match(lines[0]!, /; refused, nothing written; check the backend's session timeout and its clock$/);
      assert.ok(!run.stderr.includes(COOKIE), 'the cookie is not printed');
      assert.equal(scripted.requests() - requests, 1, 'a protocol error is not retried');
      assert.deepEqual(await stack.includeBytes(), good, 'the include is kept byte for byte');
      assert.equal(await stack.nginx.reloads(), reloads, 'nginx was not reloaded');
      assert.equal((await stack.get('/_config')).status, 200, 'nginx still serves with the earlier cookie');
      const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
      assert.equal(status.last_error.code, 'ERR_PROTOCOL');
    });
  }

  for (const { name, attributes, claimed } of [
    { name: 'Max-Age=99999999999999 (past the date range once added to now)', attributes: '; Max-Age=99999999999999', claimed: /claims to last 99999999999999s \(max-age\)/ },
    { name: 'an Expires in the year 9999', attributes: '; Expires=Fri, 31 Dec 9999 23:59:59 GMT', claimed: /claims to last \d+s \(expires\)/ },
  ]) {
    test(`a cookie with ${name} is accepted for 30 days with one warning line, exit 0, and nginx serves it`, async () => {
      scripted.setScript(() => rawResponse('200 OK', [date(), `Set-Cookie: AuthSession=${COOKIE}; Version=1; Path=/; HttpOnly${attributes}`], OK_BODY));
      const run = await stack.cli(['refresh-now', '--force', '--json']);
      assert.equal(run.code, 0, run.stderr);
      const outcome = JSON.parse(run.stdout).sessions[0];
      const left = (Date.parse(outcome.expires) - Date.now()) / 1000;
      assert.ok(Math.abs(left - THIRTY_DAYS) < 60, `expires in ${left}s, expected 30 days`);
      const lines = run.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      const warning = JSON.parse(lines[0]!) as Record<string, unknown>;
      assert.equal(warning.level, 'warn');
      assert.match(String(warning.msg), claimed);
      assert.match(String(warning.msg), /treated as 2592000s \(30 days\), the longest believed$/);
      assert.ok(!run.stderr.includes(COOKIE));
      await stack.nginx.waitForGeneration(outcome.generation);
      const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
      assert.ok(Math.abs(status.seconds_left - THIRTY_DAYS) < 60, `status says ${status.seconds_left}s left`);
      // The next run finds a fresh cookie: no crash reading the state back, no login.
      const requests = scripted.requests();
      const again = await stack.cli(['refresh-now']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /couch: fresh/);
      assert.equal(scripted.requests(), requests);
    });
  }
});

describe('the daemon with a cookie whose expiry makes no sense (scripted CouchDB behind nginx)', { skip }, () => {
  let couch: ScriptedCouch;
  let stack: ScriptedStack;
  let daemon: Daemon | undefined;
  beforeEach(async () => {
    couch = await startScriptedCouch('svc', 'expiry-secret');
    stack = await startScriptedStack({ backend: couch.url, username: 'svc', password: 'expiry-secret' });
    (stack.config.daemon as Record<string, unknown>).retry_min = 1;
    await stack.writeConfig();
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    await stack.stop();
    await couch.stop();
  });

  test('Max-Age=0 at every login: refused and retried with growing backoff; the include is never blanked or reloaded in a loop', async () => {
    couch.setCookieAttributes('; Max-Age=0');
    daemon = await startDaemon(stack.configPath);
    const failures: Record<string, unknown>[] = [];
    let mark = 0;
    for (let i = 0; i < 3; i++) {
      const line = await daemon.log.waitFor(/"msg":"the backend's AuthSession cookie is already expired when issued/, 20_000, `failed attempt ${i + 1}`, mark);
      mark = daemon.log.lines.indexOf(line) + 1;
      failures.push(JSON.parse(line) as Record<string, unknown>);
    }
    assert.deepEqual(failures.map((f) => f.code), ['ERR_PROTOCOL', 'ERR_PROTOCOL', 'ERR_PROTOCOL']);
    assert.deepEqual(failures.map((f) => f.attempt), [1, 2, 3]);
    const at = failures.map((f) => Date.parse(String(f.time)));
    assert.ok(at[1]! - at[0]! >= 450, `the second attempt came ${at[1]! - at[0]!} ms after the first`);
    assert.ok(at[2]! - at[1]! >= 950, `the third attempt came ${at[2]! - at[1]!} ms after the second`);
    assert.equal(couch.logins(), 3, 'one login per attempt, no more');
    assert.equal(await stack.nginx.reloads(), 0, 'nginx was never reloaded');
    assert.equal((await stack.includeBytes()).toString(), placeholderInclude(), 'the include was neither written nor blanked');
    assert.equal(daemon.child.exitCode, null, 'the daemon runs on');

    // A client meanwhile gets a 503 with Retry-After, not a 500 and not a loop.
    const res = await fetch(`${stack.nginx.url}/db`);
    assert.equal(res.status, 503, await res.clone().text());
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
  });

  test('Max-Age=99999999999999: the daemon starts (no crash at start), the cookie lasts 30 days, and a 401 is replayed, not answered 500', async () => {
    couch.setCookieAttributes('; Max-Age=99999999999999');
    daemon = await startDaemon(stack.configPath);
    await stack.nginx.waitForGeneration(1);
    const warning = await daemon.waitForMsg(/the backend's AuthSession cookie claims to last 99999999999999s \(max-age\)/);
    assert.equal(warning.level, 'warn');
    const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
    assert.ok(Math.abs(status.seconds_left - THIRTY_DAYS) < 60, `status says ${status.seconds_left}s left`);

    couch.rotate();
    const res = await fetch(`${stack.nginx.url}/db`);
    assert.equal(res.status, 200, await res.clone().text());
    await stack.nginx.waitForGeneration(2);
    assert.equal(couch.logins(), 2);
    const health = (await (await fetch(`${stack.admin}/healthz`)).json()) as { ok: boolean; sessions: { seconds_left: number }[] };
    assert.equal(health.ok, true);
    assert.ok(Math.abs(health.sessions[0]!.seconds_left - THIRTY_DAYS) < 60);
    assert.equal(daemon.child.exitCode, null, 'the daemon runs on');
  });
});
