/**
 * Configuration and password edge cases against the real stack (pouchdb-server behind a real
 * nginx, the built CLI and daemon spawned): a pathological config is refused in one short line
 * without hanging the CLI or stalling the daemon; a password file saved with a byte order mark
 * and CRLF works; a password with stray whitespace is sent as typed and the rejection says so;
 * `check` warns about directories anyone may write and a password file anyone may read.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { startDaemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

describe('configuration and password edge cases', { skip }, () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack({ fallback: true });
  });
  afterEach(async () => {
    await stack.stop();
  });

  /** The config with `extra` top-level keys k0..k(n-1) appended. */
  const withKeys = (n: number) => `${stringify(stack.config)}${Array.from({ length: n }, (_, i) => `k${i}: ${i}`).join('\n')}\n`;

  test('20,000 and 200,000 keys, and 4,000 under the size limit, are refused with exit 78 in one short line, without hanging', async () => {
    for (const [keys, line] of [
      [20_000, /: it is \d+ bytes, over the 65536-byte limit for this file; pass --config FILE with the configuration file$/],
      [200_000, /: it is \d+ bytes, over the 65536-byte limit for this file;/],
      [4_000, /, 4000 problems, the first 20: unknown key k0: remove it or check its spelling; .*; unknown key k19: remove it or check its spelling; and 3980 more$/],
    ] as const) {
      await writeFile(stack.configPath, withKeys(keys));
      const started = Date.now();
      const run = await stack.cli(['status']);
      const took = Date.now() - started;
      assert.equal(run.code, 78, run.stderr);
      const lines = run.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${keys} keys: one line`);
      assert.match(lines[0]!, line);
      assert.ok(lines[0]!.length < 4096, `${keys} keys: the line has ${lines[0]!.length} characters`);
      assert.ok(took < 10_000, `${keys} keys: status took ${took} ms`);
    }
  });

  test('a SIGHUP with a 200,000-key config is refused at once; the daemon keeps its configuration and the fallback keeps answering', async () => {
    const daemon = await startDaemon(stack.configPath);
    try {
      await stack.nginx.waitForGeneration(1);
      const good = stringify(stack.config);
      await writeFile(stack.configPath, withKeys(200_000));
      const mark = daemon.mark();
      const sent = Date.now();
      daemon.child.kill('SIGHUP');
      const refused = await daemon.waitForMsgAfter(mark, /configuration not applied, keeping the running one: /);
      assert.ok(Date.parse(String(refused.time)) - sent < 2000, 'refused within two seconds of the SIGHUP');
      assert.match(String(refused.msg), /over the 65536-byte limit/);
      await stack.couch.rotateSecret();
      const res = await stack.get('/_config');
      assert.equal(res.status, 200, 'the fallback replays with the configuration it kept');
      await writeFile(stack.configPath, good);
    } finally {
      const code = await daemon.stop();
      assert.equal(code, 0, `the daemon exited with ${code} (signal ${daemon.child.signalCode}); its last lines:\n${daemon.log.lines.slice(-15).join('\n')}`);
    }
  });

  test('a password file saved with a byte order mark and CRLF logs in', async () => {
    await writeFile(stack.passwordFile, `\uFEFF${stack.couch.admin.password}\r\n`);
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 0, run.stderr);
    await stack.nginx.waitForGeneration(1);
    assert.equal((await stack.get('/_config')).status, 200);
  });

  test('a password with a trailing space or a blank last line is sent as typed, and the rejection says so without the password', async () => {
    const password = stack.couch.admin.password;
    for (const [content, hint] of [
      [`${password} \n`, /the password ends with 1 whitespace character\(s\) \(space\), sent as typed; remove them from the password source if they are not part of it$/],
      [`${password}\n\n`, /the password ends with 1 whitespace character\(s\) \(newline\), sent as typed;/],
      [`\t${password}\n`, /the password starts with 1 whitespace character\(s\) \(tab\), sent as typed;/],
    ] as const) {
      await writeFile(stack.passwordFile, content);
      const run = await stack.cli(['refresh-now']);
      assert.equal(run.code, 77, run.stderr);
      const lines = run.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, /rejected the login for user "admin" \(401/);
      assert.match(lines[0]!, hint);
      assert.ok(!run.stderr.includes(password), 'the password is not printed');
    }
    await writeFile(stack.passwordFile, 'plainly-wrong\n');
    const wrong = await stack.cli(['refresh-now']);
    assert.match(wrong.stderr.trimEnd(), /check the password source and the account on the backend$/, 'no whitespace, no whitespace hint');
  });

  test('check warns about an include or state directory anyone may write and a password file anyone may read, and fails on a FIFO include', async () => {
    const includeDir = join(stack.dir, 'include');
    await mkdir(stack.stateDir, { recursive: true });
    await chmod(includeDir, 0o777);
    await chmod(stack.stateDir, 0o777);
    await chmod(stack.passwordFile, 0o644);
    const run = await stack.cli(['check']);
    assert.equal(run.code, 0, `warnings do not fail the check:\n${run.stdout}${run.stderr}`);
    assert.match(run.stderr, new RegExp(`WARN {2}state_dir: ${stack.stateDir} is writable by every user \\(mode 0777\\): anyone on the host can replace the state and locks; chmod o-w`));
    assert.match(run.stderr, new RegExp(`WARN {2}session couch include directory: ${includeDir} is writable by every user \\(mode 0777\\): anyone on the host can replace the include nginx reads`));
    assert.match(run.stderr, new RegExp(`WARN {2}session couch password file: ${stack.passwordFile} is readable by every user \\(mode 0644\\); chmod o-r`));

    await chmod(includeDir, 0o755);
    await chmod(stack.stateDir, 0o750);
    await chmod(stack.passwordFile, 0o640);
    const quiet = await stack.cli(['check']);
    assert.doesNotMatch(quiet.stderr, /every user/);

    await rm(stack.include);
    assert.equal(spawnSync('mkfifo', [stack.include]).status, 0);
    const started = Date.now();
    const fifo = await stack.cli(['check']);
    assert.ok(Date.now() - started < 10_000, `check took ${Date.now() - started} ms (nginx -t would block on the FIFO)`);
    assert.equal(fifo.code, 73, fifo.stdout + fifo.stderr);
    assert.match(fifo.stderr, /FAIL {2}session couch include: the include .* is a FIFO \(named pipe\), not a regular file/);
    assert.match(fifo.stderr, /FAIL {2}nginx -t: not run: an include is not a regular file, and nginx would block reading it/);
  });
});

describe('configuration of credential kinds', { skip }, () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack.stop();
  });

  test('check on a basic session warns that the include holds the password itself, and still passes', async () => {
    Object.assign(stack.session, { kind: 'basic', probe_path: '/_session' });
    await stack.writeConfig();
    const run = await stack.cli(['check']);
    assert.match(run.stderr, /WARN {2}session couch include: kind basic: .* holds the password itself/);
    assert.doesNotMatch(run.stdout + run.stderr, new RegExp(stack.couch.admin.password), 'the warning never shows the password');
    assert.match(run.stdout, /^ok {2}session couch password: readable and not empty$/m);
  });

  test('a key of another kind and a literal client secret are refused at once, naming the kind, echoing no secret (exit 78)', async () => {
    Object.assign(stack.session, { token_url: 'https://idp.example/token', client_secret: 'literal-secret-value' });
    await stack.writeConfig();
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 78);
    assert.match(run.stderr, /unknown key sessions\[0\] \(couch\)\.token_url: it belongs to kind oauth2-client-credentials, and this session is kind couchdb-session/);
    assert.match(run.stderr, /unknown key sessions\[0\] \(couch\)\.client_secret: a literal client secret is not accepted; use client_secret_file, client_secret_env or client_secret_credential/);
    assert.doesNotMatch(run.stderr, /literal-secret-value/);
    assert.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  });
});
