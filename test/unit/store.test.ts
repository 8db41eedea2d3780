/**
 * Reading the state file back: times that are not dates are dropped (so no NaN reaches a timer),
 * and a state path that is not a regular file is refused, not read.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { WriteError } from '../../src/errors.js';
import { readState, statePath } from '../../src/state/store.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'session-refresher-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('readState', () => {
  it('keeps valid times and drops times that do not parse as dates', async (t) => {
    const dir = await tempDir(t);
    await writeFile(statePath(dir, 'couch'), JSON.stringify({ generation: 4, issued: '2026-11-22T10:00:00.000Z', expires: 'never', last_login: '+275760-09-13T00:00:00.001Z', include_sha256: 'ab' }));
    const state = await readState(dir, 'couch');
    assert.equal(state?.generation, 4);
    assert.equal(state?.issued, '2026-11-22T10:00:00.000Z');
    assert.equal(state?.expires, undefined);
    assert.equal(state?.last_login, undefined);
    assert.equal(state?.include_sha256, 'ab');
  });

  it('refuses a state path that is a FIFO or a link to /dev/zero with a WriteError, at once', async (t) => {
    const dir = await tempDir(t);
    assert.equal(spawnSync('mkfifo', [statePath(dir, 'fifo')]).status, 0);
    await symlink('/dev/zero', statePath(dir, 'zero'));
    for (const name of ['fifo', 'zero']) {
      await assert.rejects(readState(dir, name), (e: unknown) => e instanceof WriteError && /^the state file .* (is a FIFO|is a symbolic link).*point state_dir elsewhere$/.test(e.message));
    }
  });
});
