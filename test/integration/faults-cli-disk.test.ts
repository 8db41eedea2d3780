/**
 * A full or read-only include directory on the `refresh-now` path (a real tmpfs), against the
 * real stack (pouchdb-server behind a real nginx, the built CLI spawned).
 *
 * What every failed run must leave behind: the exit code of the README's table, exactly one line
 * on stderr (what, why, what to do), the previous include byte for byte, nginx not reloaded and
 * still serving with the earlier cookie, and no password or cookie in the output
 * (test/helpers/fault-checks.ts).
 */
import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { assertNoSecrets, assertPreviousKept, cookieOf, oneLine } from '../helpers/fault-checks.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const skip = skipWithoutNginx();

describe('an include directory that is full or read-only (a real tmpfs)', { skip }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.stop();
  });

  test('ENOSPC and EROFS exit 73 with one line each, the include is intact and nginx keeps serving', async (t: TestContext) => {
    const placeholder = await stack.includeBytes();
    const dir = join(stack.dir, 'include');
    const fs = mountTmpfs(dir, 64);
    if ('skip' in fs) {
      t.skip(fs.skip);
      return;
    }
    try {
      await writeFile(stack.include, placeholder, { mode: 0o640 });
      const first = await stack.cli(['refresh-now']);
      assert.equal(first.code, 0, first.stderr);
      await stack.nginx.waitForGeneration(1);
      const good = await stack.includeBytes();
      const secrets = [stack.couch.admin.password, cookieOf(good)];
      const reloads = await stack.nginx.reloads();

      const filler = await fs.fill();
      await assert.rejects(writeFile(join(dir, 'probe'), 'x'), { code: 'ENOSPC' }, 'the tmpfs is full');
      await rm(join(dir, 'probe'));
      const full = await stack.cli(['refresh-now', '--force']);
      assert.equal(full.code, 73, full.stderr);
      assert.match(oneLine(full), /cannot write .*couch\.conf: ENOSPC: no space left on device.*; free space on that filesystem$/);
      assertNoSecrets(full, secrets);
      await assertPreviousKept(stack, good, reloads);
      assert.deepEqual((await readdir(dir)).sort(), ['couch.conf', 'filler'], 'the failed temp file was removed');

      await rm(filler);
      fs.remountReadOnly();
      const readOnly = await stack.cli(['refresh-now', '--force']);
      assert.equal(readOnly.code, 73, readOnly.stderr);
      assert.match(oneLine(readOnly), /EROFS: read-only file system; the filesystem is read-only; point the include at a writable directory$/);
      assertNoSecrets(readOnly, secrets);
      await assertPreviousKept(stack, good, reloads);
      const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
      assert.equal(status.last_error.code, 'ERR_CANNOT_WRITE');
      assert.equal(status.generation, 1);
    } finally {
      fs.unmount();
    }
  });
});
