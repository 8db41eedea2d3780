/**
 * Atomic replacement of the include on a real filesystem: the mode nginx needs, no stray temp
 * files, and the previous include left intact whenever a write fails.
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { ExitCode, WriteError } from '../../src/errors.js';
import { MAX_OWNED_FILE_BYTES, readIfExists, removeIfExists, writeAtomic } from '../../src/render/write.js';

const OLD = Buffer.from('set $auth_cookie "AuthSession=old";\nset $auth_cookie_generation "1";\n');
const NEW = 'set $auth_cookie "AuthSession=new";\nset $auth_cookie_generation "2";\n';
const RUNNING_AS_ROOT = process.getuid?.() === 0;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'session-refresher-write-'));
  t.after(async () => {
    await chmod(dir, 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(previous);
  }
}

function isWriteError(error: unknown): error is WriteError {
  return error instanceof WriteError && error.exitCode === ExitCode.CANNOT_WRITE && error.exitCode === 73 && error.code === 'ERR_CANNOT_WRITE';
}

describe('writeAtomic', () => {
  it('creates the file with the given content', async (t) => {
    const path = join(await tempDir(t), 'couch.conf');
    await writeAtomic(path, NEW, { mode: 0o640 });
    assert.equal(await readFile(path, 'utf8'), NEW);
  });

  for (const mask of [0o077, 0o000]) {
    it(`gives the file mode 0640 under umask ${mask.toString(8).padStart(3, '0')}`, async (t) => {
      const path = join(await tempDir(t), 'couch.conf');
      await withUmask(mask, () => writeAtomic(path, NEW, { mode: 0o640 }));
      assert.equal((await stat(path)).mode & 0o777, 0o640);
    });
  }

  it('gives a replaced file the requested mode, whatever mode the old file had', async (t) => {
    const path = join(await tempDir(t), 'couch.conf');
    await writeFile(path, OLD, { mode: 0o666 });
    await chmod(path, 0o666);
    await withUmask(0o077, () => writeAtomic(path, NEW, { mode: 0o640 }));
    assert.equal((await stat(path)).mode & 0o777, 0o640);
  });

  it('writes a state file with mode 0600', async (t) => {
    const path = join(await tempDir(t), 'couch.json');
    await withUmask(0o000, () => writeAtomic(path, '{}\n', { mode: 0o600 }));
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  it('replaces the content of an existing file', async (t) => {
    const path = join(await tempDir(t), 'couch.conf');
    await writeFile(path, OLD);
    await writeAtomic(path, NEW, { mode: 0o640 });
    assert.equal(await readFile(path, 'utf8'), NEW);
  });

  it('writes a Buffer byte for byte', async (t) => {
    const path = join(await tempDir(t), 'couch.conf');
    const bytes = Buffer.from([0x23, 0x00, 0xff, 0x0a]);
    await writeAtomic(path, bytes, { mode: 0o640 });
    assert.deepEqual(await readFile(path), bytes);
  });

  it('leaves no temporary files in the directory', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'couch.conf');
    await writeAtomic(path, OLD, { mode: 0o640 });
    await writeAtomic(path, NEW, { mode: 0o640 });
    assert.deepEqual(await readdir(dir), ['couch.conf']);
  });

  it('removes temp files left by a killed writer (pid gone) and keeps those of a live one', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'couch.conf');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const orphan = join(dir, `.couch.conf.${dead}.0badc0de.tmp`);
    const live = join(dir, `.couch.conf.${process.ppid}.0badc0de.tmp`);
    const unrelated = join(dir, `.other.conf.${dead}.0badc0de.tmp`);
    for (const f of [orphan, live, unrelated]) await writeFile(f, 'partial');
    await writeAtomic(path, NEW, { mode: 0o640 });
    assert.deepEqual((await readdir(dir)).sort(), ['.couch.conf.' + process.ppid + '.0badc0de.tmp', '.other.conf.' + dead + '.0badc0de.tmp', 'couch.conf'].sort());
  });

  it('gives the file the configured group', async (t) => {
    const gid = RUNNING_AS_ROOT ? 65534 : process.getgroups?.().find((g) => g !== process.getgid?.());
    if (gid === undefined) {
      t.skip('this user belongs to no second group to hand the file to');
      return;
    }
    const path = join(await tempDir(t), 'couch.conf');
    await writeAtomic(path, NEW, { mode: 0o640, gid });
    assert.equal((await stat(path)).gid, gid);
  });

  it('throws WriteError (exit code 73) and keeps the previous file byte-identical when the directory is read-only', async (t) => {
    if (RUNNING_AS_ROOT) {
      t.skip('root writes into a 0555 directory; the failure tests below force failures root cannot bypass');
      return;
    }
    const dir = await tempDir(t);
    const path = join(dir, 'couch.conf');
    await writeFile(path, OLD);
    await chmod(dir, 0o555);
    await assert.rejects(writeAtomic(path, NEW, { mode: 0o640 }), (error: unknown) => {
      assert.ok(isWriteError(error), `expected WriteError, got ${String(error)}`);
      assert.ok(error.message.includes(dir), error.message);
      assert.match(error.message, /EACCES/);
      return true;
    });
    assert.deepEqual(await readFile(path), OLD);
    assert.deepEqual(await readdir(dir), ['couch.conf']);
  });

  it('throws WriteError and keeps the previous file byte-identical when the temporary file cannot be created', async (t) => {
    // The target's name fits the 255-byte limit, but the temporary name built from it does not,
    // so creating the temporary file fails with ENAMETOOLONG (even for root).
    const dir = await tempDir(t);
    const path = join(dir, `${'n'.repeat(245)}.conf`);
    await writeFile(path, OLD);
    await assert.rejects(writeAtomic(path, NEW, { mode: 0o640 }), (error: unknown) => {
      assert.ok(isWriteError(error), `expected WriteError, got ${String(error)}`);
      assert.match(error.message, /ENAMETOOLONG/);
      return true;
    });
    assert.deepEqual(await readFile(path), OLD);
    assert.deepEqual(await readdir(dir), [`${'n'.repeat(245)}.conf`]);
  });

  it('throws WriteError and removes its temporary file when the final rename fails', async (t) => {
    // A non-empty directory where the include should be: the temporary file is written, the
    // rename over the directory fails.
    const dir = await tempDir(t);
    const path = join(dir, 'couch.conf');
    await mkdir(path);
    await writeFile(join(path, 'keep'), OLD);
    await assert.rejects(writeAtomic(path, NEW, { mode: 0o640 }), (error: unknown) => {
      assert.ok(isWriteError(error), `expected WriteError, got ${String(error)}`);
      assert.match(error.message, /rename over/);
      assert.ok(error.message.includes(path), error.message);
      return true;
    });
    assert.deepEqual(await readdir(dir), ['couch.conf']);
    assert.deepEqual(await readFile(join(path, 'keep')), OLD);
  });

  it('throws WriteError naming the directory, with a hint, when the directory does not exist', async (t) => {
    const dir = join(await tempDir(t), 'missing');
    await assert.rejects(writeAtomic(join(dir, 'couch.conf'), NEW, { mode: 0o640 }), (error: unknown) => {
      assert.ok(isWriteError(error), `expected WriteError, got ${String(error)}`);
      assert.ok(error.message.includes(dir), error.message);
      assert.match(error.message, /create the directory first/);
      return true;
    });
  });
});

describe('readIfExists', () => {
  it('returns the bytes of an existing file', async (t) => {
    const path = join(await tempDir(t), 'couch.conf');
    await writeFile(path, OLD);
    assert.deepEqual(await readIfExists(path), OLD);
  });

  it('returns undefined for a missing file', async (t) => {
    assert.equal(await readIfExists(join(await tempDir(t), 'missing.conf')), undefined);
  });

  it('throws WriteError when the path cannot be read as a file', async (t) => {
    await assert.rejects(readIfExists(await tempDir(t)), isWriteError);
  });

  it('refuses a FIFO, a directory, a symbolic link and an oversized file with a WriteError naming what is there and the key to change, without blocking', async (t) => {
    const dir = await tempDir(t);
    const fifo = join(dir, 'fifo.conf');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const link = join(dir, 'link.conf');
    await writeFile(join(dir, 'target'), OLD);
    await symlink(join(dir, 'target'), link);
    const big = join(dir, 'big.conf');
    await writeFile(big, Buffer.alloc(MAX_OWNED_FILE_BYTES + 1, 0x41));
    const cases: [string, RegExp][] = [
      [fifo, /is a FIFO \(named pipe\), not a regular file/],
      [dir, /is a directory, not a regular file/],
      [link, /is a symbolic link, which is not followed \(its target would be read and replaced\)/],
      [big, /is 65537 bytes, over the 65536-byte limit for this file/],
    ];
    for (const [path, reason] of cases) {
      await assert.rejects(readIfExists(path, { what: 'the include', key: 'include' }), (error: unknown) => {
        assert.ok(isWriteError(error), String(error));
        assert.match(error.message, new RegExp(`^the include ${path.replace(/[.]/g, '\\.')} `));
        assert.match(error.message, reason);
        assert.match(error.message, /session-refresher reads and replaces only a regular file there: move it away, or point include elsewhere$/);
        return true;
      });
    }
    assert.ok((await lstat(fifo)).isFIFO(), 'the FIFO is left as it was');
    assert.ok((await lstat(link)).isSymbolicLink(), 'the link is left as it was');
  });
});

describe('removeIfExists', () => {
  it('removes an existing file and accepts a missing one', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'couch.conf');
    await writeFile(path, OLD);
    await removeIfExists(path);
    assert.deepEqual(await readdir(dir), []);
    await removeIfExists(path);
  });
});
