/**
 * Files are looked at before they are used. The include and the state file must be regular
 * files or absent: a FIFO, a device, a socket or a symbolic link there is refused at once with
 * one line and exit 73, nothing is read past a small bound, and nothing is written. An include
 * path that is, or resolves to, the password file, the config file or the state directory is a
 * configuration error (exit 78) before anything is touched.
 *
 * Against the real stack: pouchdb-server behind a real nginx, the built CLI and daemon spawned.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { type CliResult } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();
const RUNNING_AS_ROOT = process.getuid?.() === 0;

/** A run that was refused must have been refused at once, not after a hang or a long read. */
async function timed(run: Promise<CliResult>): Promise<CliResult & { ms: number }> {
  const started = Date.now();
  const result = await run;
  return { ...result, ms: Date.now() - started };
}

function oneLine(run: CliResult): string {
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${run.stderr}`);
  return lines[0]!;
}

function mkfifo(path: string): void {
  assert.equal(spawnSync('mkfifo', [path]).status, 0, `mkfifo ${path}`);
}

describe('an include or state path that is not a regular file', { skip }, () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack.stop();
  });

  const cases: { name: string; make: (path: string) => Promise<void>; reason: RegExp; type: 'isFIFO' | 'isSymbolicLink' | 'isCharacterDevice'; root?: boolean }[] = [
    { name: 'a FIFO', make: async (p) => mkfifo(p), reason: /is a FIFO \(named pipe\), not a regular file/, type: 'isFIFO' },
    { name: 'a symbolic link to /dev/zero', make: (p) => symlink('/dev/zero', p), reason: /is a symbolic link, which is not followed/, type: 'isSymbolicLink' },
    { name: 'a character device (mknod, as root)', make: async (p) => void assert.equal(spawnSync('mknod', ['-m', '0644', p, 'c', '1', '5']).status, 0), reason: /is a character device, not a regular file/, type: 'isCharacterDevice', root: true },
  ];

  for (const { name, make, reason, type, root } of cases) {
    test(`include: ${name} is refused at once with exit 73 and one line; it is left as it is and nginx is not reloaded`, { skip: root && !RUNNING_AS_ROOT ? 'needs root for mknod' : false }, async () => {
      await rm(stack.include);
      await make(stack.include);
      for (const args of [['refresh-now'], ['refresh-now', '--force']]) {
        const run = await timed(stack.cli(args));
        assert.equal(run.code, 73, run.stderr);
        assert.ok(run.ms < 10_000, `${args.join(' ')} took ${run.ms} ms`);
        const line = oneLine(run);
        assert.match(line, new RegExp(`^session-refresher: couch: the include ${stack.include.replace(/[.]/g, '\\.')} `));
        assert.match(line, reason);
        assert.match(line, /session-refresher reads and replaces only a regular file there: move it away, or point include elsewhere$/);
      }
      assert.ok((await lstat(stack.include))[type](), 'the odd file is still there, untouched');
      assert.equal(await stack.nginx.reloads(), 0);
      await stack.couch.settle();
      assert.equal(stack.couch.loginAttempts(), 0, 'refused before any login');
      const status = await timed(stack.cli(['status', '--json']));
      assert.equal(status.code, 0, status.stderr);
      assert.match(JSON.parse(status.stdout).sessions[0].file_problem, reason);
    });
  }

  test('state file: a FIFO or a link to /dev/zero is refused at once with exit 73; it stays, and no state is written over it', async () => {
    await mkdir(stack.stateDir, { recursive: true, mode: 0o750 });
    const statePath = join(stack.stateDir, 'couch.json');
    for (const [make, reason] of [
      [async () => mkfifo(statePath), /the state file .* is a FIFO \(named pipe\)/],
      [() => symlink('/dev/zero', statePath), /the state file .* is a symbolic link, which is not followed/],
    ] as const) {
      await rm(statePath, { force: true });
      await make();
      const before = await stack.includeBytes();
      const run = await timed(stack.cli(['refresh-now']));
      assert.equal(run.code, 73, run.stderr);
      assert.ok(run.ms < 10_000, `refresh-now took ${run.ms} ms`);
      assert.match(oneLine(run), reason);
      assert.match(oneLine(run), /point state_dir elsewhere$/);
      const after = await lstat(statePath);
      assert.ok(after.isFIFO() || after.isSymbolicLink(), 'the state path was not replaced');
      assert.deepEqual(await stack.includeBytes(), before, 'the include is kept byte for byte');
    }
  });

  test('a symlinked include pointing at a root-only file: refused, the link stays, and the target\'s content is never copied anywhere', async () => {
    const secretFile = join(stack.dir, 'root-only.conf');
    const secret = 'set $auth_cookie "AuthSession=root-only-content-c2VjcmV0";\n';
    await writeFile(secretFile, secret, { mode: 0o600 });
    await rm(stack.include);
    await symlink(secretFile, stack.include);
    // nginx -t would fail with this variable: the old code then "restored" the link's target into a regular file.
    stack.session.variable = 'host';
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 73, run.stderr);
    assert.match(oneLine(run), /is a symbolic link, which is not followed \(its target would be read and replaced\)/);
    assert.ok((await lstat(stack.include)).isSymbolicLink(), 'the link is still a link');
    assert.equal(await readFile(secretFile, 'utf8'), secret, 'the target is untouched');
    for (const name of await readdir(join(stack.dir, 'include'))) {
      const path = join(stack.dir, 'include', name);
      if ((await lstat(path)).isFile()) assert.ok(!(await readFile(path, 'utf8')).includes('root-only-content'), `${name} holds the target's content`);
    }
    assert.ok(!run.stderr.includes('root-only-content'));
  });

  test('the daemon with a FIFO at the include becomes ready, reports the problem in its log and /healthz, and stops cleanly', async () => {
    await rm(stack.include);
    mkfifo(stack.include);
    const started = Date.now();
    const daemon = await startDaemon(stack.configPath);
    try {
      assert.ok(Date.now() - started < 15_000, `ready after ${Date.now() - started} ms`);
      const error = await daemon.waitForMsg(/the include .* is a FIFO \(named pipe\), not a regular file/);
      assert.equal(error.code, 'ERR_CANNOT_WRITE');
      const admin = (stack.config.daemon as { admin_listen: string }).admin_listen;
      const res = await fetch(`http://${admin}/healthz`);
      assert.equal(res.status, 503);
      const health = (await res.json()) as { sessions: { error: { code: string } | null }[] };
      assert.equal(health.sessions[0]!.error?.code, 'ERR_CANNOT_WRITE');
      assert.ok((await lstat(stack.include)).isFIFO());
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
});

describe('an include path that is, or resolves to, a file the include would destroy', { skip }, () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack.stop();
  });

  test('is refused with exit 78 before anything is read, written or reloaded: the password file, the config file, the state directory, and a link to the password file', async () => {
    const password = await readFile(stack.passwordFile);
    const linkDir = join(stack.dir, 'linked');
    await symlink(stack.dir, linkDir);
    const cases: [string, RegExp][] = [
      [stack.passwordFile, /is the password_file of session couch/],
      [stack.configPath, /is the configuration file/],
      [stack.stateDir, /is the state directory \(state_dir\)/],
      [join(linkDir, 'couch.password'), /resolves to .*couch\.password, which is the password_file of session couch/],
      [`${stack.dir}/./config.yaml`, /resolves to .*config\.yaml, which is the configuration file/],
    ];
    for (const [include, reason] of cases) {
      stack.session.include = include;
      await stack.writeConfig();
      const config = await readFile(stack.configPath);
      for (const args of [['refresh-now'], ['run']]) {
        const run = await stack.cli(args);
        assert.equal(run.code, 78, `${args[0]} with include ${include}: ${run.stderr}`);
        const line = oneLine(run);
        assert.match(line, /^session-refresher: invalid configuration \(.*\): sessions\[0\] \(couch\)\.include: /);
        assert.match(line, reason);
        assert.match(line, /give the include its own file$/);
      }
      assert.deepEqual(await readFile(stack.passwordFile), password, 'the password file is intact');
      assert.deepEqual(await readFile(stack.configPath), config, 'the config file is intact');
    }
    assert.equal(await stack.nginx.reloads(), 0);
    await stack.couch.settle();
    assert.equal(stack.couch.loginAttempts(), 0);
  });
});
