/**
 * A backend that fails at the connection, before any HTTP: refused, reset, or a connect that
 * hangs. `refresh-now` (the built CLI, spawned) must make `retries + 1` attempts and name the
 * real cause in its one line, on every supported Node.js. Node.js 24.20+ reports these failures
 * to the HTTP client a second time, as ERR_SOCKET_CLOSED_BEFORE_CONNECTION, which used to end
 * the login after one attempt under that name (see src/session/late-end-error.ts).
 *
 * The login fails before nginx is involved, so these tests need no nginx; the include written
 * before the run must come out byte for byte.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { startFrozenListener, startResettingListener } from '../helpers/broken-listeners.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { placeholderInclude } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

const PASSWORD = 'connection-faults-password';

describe('refresh-now when the backend fails at the connection', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let include: string;

  before(async () => {
    dir = await tempDir('sr-connect-');
    include = join(dir.path, 'couch.conf');
    await writeFile(include, placeholderInclude(), { mode: 0o640 });
    await writeFile(join(dir.path, 'pw'), `${PASSWORD}\n`, { mode: 0o600 });
  });
  after(async () => {
    await dir?.remove();
  });

  /** Runs `refresh-now --force` against `url`; asserts exit 69, one line, no password, the include kept. */
  async function refreshAgainst(url: string, session: { timeout: number; retries: number }): Promise<{ line: string; ms: number }> {
    const configPath = join(dir.path, 'config.yaml');
    const sessions = [{ name: 'couch', url, username: 'svc', password_file: join(dir.path, 'pw'), include, ...session }];
    await writeFile(configPath, stringify({ state_dir: join(dir.path, 'state'), sessions }));
    const kept = await readFile(include);
    const started = Date.now();
    const run: CliResult = await runCli(['refresh-now', '--force', '--config', configPath]);
    const ms = Date.now() - started;
    assert.equal(run.code, 69, run.stderr);
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${run.stderr}`);
    assert.ok(!run.stderr.includes(PASSWORD) && !run.stdout.includes(PASSWORD), 'the password was printed');
    assert.deepEqual(await readFile(include), kept, 'the include is kept byte for byte');
    return { line: lines[0]!, ms };
  }

  test(`a port with nothing listening is tried retries + 1 times and the line names ECONNREFUSED (${process.version})`, async () => {
    const { line } = await refreshAgainst(`http://127.0.0.1:${await freePort()}`, { timeout: 5, retries: 2 });
    assert.match(line, /cannot reach http:\/\/127\.0\.0\.1:\d+\/_session \(ECONNREFUSED: .*, 3 attempt\(s\)\); is the backend up\?$/);
  });

  test(`a backend that resets every connection (scripted) gets retries + 1 connections and the line names ECONNRESET (${process.version})`, async () => {
    const listener = await startResettingListener();
    try {
      const { line } = await refreshAgainst(listener.url, { timeout: 5, retries: 2 });
      assert.equal(listener.connections(), 3, 'retries: 2 means three connections');
      assert.match(line, /cannot reach http:\/\/127\.0\.0\.1:\d+\/_session \(ECONNRESET: .*, 3 attempt\(s\)\); is the backend up\?$/);
    } finally {
      await listener.stop();
    }
  });

  test(`a backend whose connects hang (a stopped process with a full accept queue) times out on each of retries + 1 attempts (${process.version})`, async () => {
    const listener = await startFrozenListener();
    try {
      const { line, ms } = await refreshAgainst(listener.url, { timeout: 1, retries: 1 });
      assert.match(line, /\/_session did not answer within 1s \(2 attempt\(s\)\); check the backend, or raise timeout$/);
      assert.ok(ms >= 2000, `two attempts of 1 s each, but the run took ${ms} ms`);
    } finally {
      await listener.stop();
    }
  });
});
