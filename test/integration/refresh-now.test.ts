/**
 * `refresh-now` against the real stack: pouchdb-server (in memory) behind a real nginx, the
 * built CLI spawned as cron would run it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

describe('refresh-now', { skip }, () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack.stop();
  });

  test('writes the include, reloads nginx, and an admin-only endpoint answers 200 through nginx', async () => {
    assert.equal((await stack.get('/_config')).status, 401, 'without a session cookie the backend refuses /_config');

    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /couch: logged in, generation 1/);

    const include = (await stack.includeBytes()).toString();
    assert.match(include, /^set \$auth_cookie "AuthSession=[A-Za-z0-9_-]+";$/m);
    assert.match(include, /^set \$auth_cookie_generation "1";$/m);
    assert.equal((await stat(stack.include)).mode & 0o777, 0o640);
    assert.equal((await stat(`${stack.stateDir}/couch.json`)).mode & 0o777, 0o600);

    await stack.nginx.waitForGeneration(1);
    const res = await stack.get('/_config');
    assert.equal(res.status, 200, res.body);
    assert.ok(JSON.parse(res.body).couch_httpd_auth !== undefined, 'answers the admin-only config document');
    assert.equal(await stack.nginx.reloads(), 1);
  });

  test('a second run is a no-op: no login, no write, no reload; --force logs in and bumps the generation', async () => {
    assert.equal((await stack.cli(['refresh-now'])).code, 0);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1);
    const before = await stack.includeBytes();
    const mtime = (await stat(stack.include)).mtimeMs;
    const reloads = await stack.nginx.reloads();

    const second = await stack.cli(['refresh-now']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /couch: fresh, generation 1/);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1, 'no second login');
    assert.deepEqual(await stack.includeBytes(), before);
    assert.equal((await stat(stack.include)).mtimeMs, mtime, 'the include was not rewritten');
    assert.equal(await stack.nginx.reloads(), reloads, 'nginx was not reloaded');

    const forced = await stack.cli(['refresh-now', '--force', '--json']);
    assert.equal(forced.code, 0, forced.stderr);
    const outcome = JSON.parse(forced.stdout).sessions[0];
    assert.equal(outcome.action, 'login');
    assert.equal(outcome.generation, 2);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 2);
    await stack.nginx.waitForGeneration(2);
    assert.equal((await stack.get('/_config')).status, 200);
  });

  test('ten runs started at once log in exactly once, counted at the backend', async () => {
    const runs = await Promise.all(Array.from({ length: 10 }, () => stack.cli(['refresh-now', '--json'])));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const actions = runs.map((r) => JSON.parse(r.stdout).sessions[0].action as string);
    assert.equal(actions.filter((a) => a === 'login').length, 1, `actions: ${actions.join(',')}`);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1);
    assert.equal(stack.couch.loginAttempts(), 1);
    await stack.nginx.waitForGeneration(1);
  });

  test('a wrong password exits 77 with one clear line and leaves the include byte for byte', async () => {
    assert.equal((await stack.cli(['refresh-now'])).code, 0);
    const before = await stack.includeBytes();
    await writeFile(stack.passwordFile, 'not-the-password\n');

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 77);
    assert.equal(run.stdout, '');
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /rejected the login for user "admin" \(401/);
    assert.ok(!run.stderr.includes('not-the-password'), 'the password is not printed');
    assert.deepEqual(await stack.includeBytes(), before);

    const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
    assert.equal(status.last_result, 'error');
    assert.equal(status.generation, 1);
    await stack.couch.settle();
    assert.equal(stack.couch.loginAttempts(), 2, 'a rejected password is not retried');
  });

  test('a backend that is down exits 69 and leaves the include byte for byte', async () => {
    assert.equal((await stack.cli(['refresh-now'])).code, 0);
    const before = await stack.includeBytes();
    await stack.couch.stop();

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 69, run.stderr);
    assert.match(run.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+\/_session \(ECONNREFUSED/);
    assert.equal(run.stderr.trim().split('\n').length, 1);
    assert.deepEqual(await stack.includeBytes(), before);
  });

  test('an include that makes nginx -t fail is rolled back byte for byte, exit 70, nginx keeps serving', async () => {
    assert.equal((await stack.cli(['refresh-now'])).code, 0);
    await stack.nginx.waitForGeneration(1);
    const before = await stack.includeBytes();
    const reloads = await stack.nginx.reloads();
    // A variable nginx already defines: `set $host ...` is refused by nginx -t.
    stack.session.variable = 'host';
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 70, run.stderr);
    assert.match(run.stderr, /nginx -t failed: .*the duplicate "host" variable.*; the previous include .* was restored/);
    assert.deepEqual(await stack.includeBytes(), before);
    assert.equal(await stack.nginx.reloads(), reloads, 'nginx was not reloaded');
    assert.equal((await stack.get('/_config')).status, 200, 'nginx still serves with the previous cookie');
  });

  test('a pid file naming a live process that is not nginx gets no signal and a clear error', async () => {
    // A process that reports any SIGHUP it gets, and answers "alive" on each line of input.
    const decoy = spawn(process.execPath, ['-e', `process.on('SIGHUP', () => console.log('GOT SIGHUP')); process.stdin.on('data', () => console.log('alive'));`], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      let output = '';
      decoy.stdout.on('data', (d: Buffer) => (output += d.toString()));
      const decoyPid = `${stack.dir}/decoy.pid`;
      await writeFile(decoyPid, `${decoy.pid}\n`);
      (stack.config.nginx as Record<string, unknown>).pid_file = decoyPid;
      await stack.writeConfig();

      const run = await stack.cli(['refresh-now']);
      assert.equal(run.code, 71, run.stderr);
      assert.match(run.stderr, new RegExp(`pid file ${decoyPid} names pid ${decoy.pid} \\(".*node.*"\\), which is not an nginx master; no signal sent`));

      decoy.stdin.write('ping\n');
      await once(decoy.stdout, 'data');
      assert.equal(output.trim(), 'alive', 'the decoy got no SIGHUP');
      // The include passed nginx -t, so it stays; the reload is owed and retried next run.
      const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
      assert.equal(status.reload_pending, true);
    } finally {
      decoy.kill();
    }
  });

  test('a lock left behind by a killed run is taken over instead of blocking refreshes', async () => {
    // What a SIGKILLed holder leaves: the lock directory, no longer refreshed.
    await mkdir(stack.stateDir, { recursive: true });
    await mkdir(`${stack.stateDir}/couch.lock`);
    const old = new Date(Date.now() - 60_000);
    await utimes(`${stack.stateDir}/couch.lock`, old, old);

    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /logged in, generation 1/);
  });

  test('no output, log line or state file carries the password or the cookie', async () => {
    const run = await stack.cli(['refresh-now', '--verbose', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const cookie = /AuthSession=([^"]+)"/.exec((await stack.includeBytes()).toString())![1]!;
    assert.match(run.stderr, /"msg":"nginx reloaded"/, 'verbose logging is on');
    const status = await stack.cli(['status']);
    const statusJson = await stack.cli(['status', '--json']);
    const check = await stack.cli(['check']);
    const stateFile = await readFile(`${stack.stateDir}/couch.json`, 'utf8');
    for (const text of [run.stdout, run.stderr, status.stdout, statusJson.stdout, check.stdout, check.stderr, stateFile]) {
      assert.ok(!text.includes(cookie), 'no cookie');
      assert.ok(!text.includes(stack.couch.admin.password), 'no password');
    }
  });

  test('check passes on a working setup and lists every problem of a broken one', async () => {
    const good = await stack.cli(['check']);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /all checks passed/);
    assert.match(good.stdout, /ok {2}nginx -t: /);

    await stack.couch.stop();
    stack.session.password_file = `${stack.dir}/missing.password`;
    await stack.writeConfig();
    const bad = await stack.cli(['check']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /FAIL {2}session couch password: .*missing\.password.*ENOENT/);
    assert.match(bad.stderr, /FAIL {2}session couch backend: cannot reach/);
    assert.match(bad.stdout, /2 problem\(s\) found/);
  });

  test('with nginx stopped the include is written, the reload skipped with a warning, exit 3', async () => {
    await stack.nginx.stop();
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /warning: nginx is not running \((no pid file at|empty pid file|stale pid file)/);
    assert.match((await readFile(stack.include, 'utf8')), /generation "1"/);
  });
});
