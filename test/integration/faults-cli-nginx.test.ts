/**
 * Faults of nginx on the `refresh-now` path, against the real stack (pouchdb-server behind a
 * real nginx, the built CLI spawned): `nginx -t` refusing the include, a missing nginx binary,
 * nginx not running, and a pid file that is stale or holds garbage.
 *
 * What every failed run must leave behind: the exit code of the README's table, exactly one line
 * on stderr (what, why, what to do), the previous include byte for byte, nginx not reloaded and
 * still serving with the earlier cookie, and no password or cookie in the output
 * (test/helpers/fault-checks.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { assertNoSecrets, assertPreviousKept, cookieOf, oneLine } from '../helpers/fault-checks.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

describe('refresh-now when nginx -t cannot accept the include', { skip }, () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack.stop();
  });

  test('with no previous include, a new include that nginx -t refuses is removed, exit 70, nginx untouched', async () => {
    await rm(stack.include);
    // `set $host ...` is refused by nginx -t: nginx defines $host itself.
    stack.session.variable = 'host';
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 70, run.stderr);
    assert.match(oneLine(run), /nginx -t failed: .*; the previous include .* was removed \(there was none\) and nginx was not reloaded$/);
    assertNoSecrets(run, [stack.couch.admin.password]);
    await assert.rejects(access(stack.include), { code: 'ENOENT' }, 'the refused include is gone');
    assert.deepEqual(await readdir(join(stack.dir, 'include')), [], 'no temporary file is left either');
    assert.equal(await stack.nginx.reloads(), 0);
    assert.equal(await stack.nginx.generation(), '0', 'nginx still serves what it started with');
  });

  test('a missing nginx binary exits 78 naming nginx.binary, and the previous include is restored byte for byte', async () => {
    assert.equal((await stack.cli(['refresh-now'])).code, 0);
    await stack.nginx.waitForGeneration(1);
    const good = await stack.includeBytes();
    const reloads = await stack.nginx.reloads();
    (stack.config.nginx as Record<string, unknown>).binary = '/nonexistent/sbin/nginx';
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 78, run.stderr);
    assert.match(oneLine(run), /nginx\.binary: cannot run "\/nonexistent\/sbin\/nginx" \(ENOENT\); install nginx or set nginx\.binary/);
    assertNoSecrets(run, [stack.couch.admin.password, cookieOf(good)]);
    await assertPreviousKept(stack, good, reloads);
  });
});

describe('refresh-now when nginx is not running or its pid file is wrong', { skip }, () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack.stop();
  });

  /** A pid that was alive a moment ago and is gone now. */
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await once(child, 'exit');
    return child.pid!;
  }

  test('a stale pid file naming a dead pid exits 3 with one warning line; the new include is written and accepted', async () => {
    const pidFile = join(stack.dir, 'stale.pid');
    const pid = await deadPid();
    await writeFile(pidFile, `${pid}\n`);
    (stack.config.nginx as Record<string, unknown>).pid_file = pidFile;
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stdout, /couch: logged in, generation 1/);
    assert.match(oneLine(run), new RegExp(`warning: nginx is not running \\(stale pid file ${pidFile}: pid ${pid} is gone\\); the include is written and nginx will read it when it starts$`));
    const include = await stack.includeBytes();
    assert.match(include.toString(), /^set \$auth_cookie_generation "1";$/m);
    assertNoSecrets(run, [stack.couch.admin.password, cookieOf(include)]);
    assert.equal(await stack.nginx.reloads(), 0, 'no signal went anywhere');
  });

  test('a pid file holding garbage exits 71 without signalling anything; the include stays and the reload is owed', async () => {
    const pidFile = join(stack.dir, 'garbage.pid');
    await writeFile(pidFile, 'nginx is great\n');
    (stack.config.nginx as Record<string, unknown>).pid_file = pidFile;
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 71, run.stderr);
    assert.match(oneLine(run), new RegExp(`nginx's pid file ${pidFile} does not hold a pid; check nginx\\.pid_file$`));
    const include = await stack.includeBytes();
    assert.match(include.toString(), /^set \$auth_cookie_generation "1";$/m, 'the include passed nginx -t, so it stays');
    assertNoSecrets(run, [stack.couch.admin.password, cookieOf(include)]);
    assert.equal(await stack.nginx.reloads(), 0);
    const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
    assert.equal(status.reload_pending, true);

    // Once the pid file is right, the next cron run pays the reload without logging in again.
    (stack.config.nginx as Record<string, unknown>).pid_file = stack.nginx.pidFile;
    await stack.writeConfig();
    const next = await stack.cli(['refresh-now']);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stdout, /nginx reloaded with generation 1 \(owed from an earlier run\)/);
    await stack.nginx.waitForGeneration(1);
    assert.equal((await stack.get('/_config')).status, 200);
  });
});
