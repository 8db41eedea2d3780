/**
 * What login() refuses before sending anything: a CA file that is not a small regular file
 * (a FIFO would block the read forever).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SessionConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { login } from '../../src/session/login.js';

describe('login', () => {
  it('refuses a ca_file that is a FIFO at once with a ConfigError naming it', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'session-refresher-login-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const ca = join(dir, 'ca.pem');
    assert.equal(spawnSync('mkfifo', [ca]).status, 0);
    const session = { name: 'couch', url: 'https://127.0.0.1:1', username: 'svc', ca_file: ca, timeout: 1, retries: 0 } as SessionConfig;
    await assert.rejects(login(session, 'pw'), (e: unknown) => e instanceof ConfigError && e.message.endsWith(`sessions (couch).ca_file: cannot read ${ca}: is a FIFO (named pipe), not a regular file`));
  });
});
