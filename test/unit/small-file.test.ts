/**
 * Reading a small file without trusting what is at the path: only a regular file is read, a
 * FIFO's open returns at once, a device or socket is refused, a link is followed only when
 * asked, and never more than the limit is read. Real files, FIFOs, sockets and links in a temp dir.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { UnsafeFileError, readSmallFile, readSmallFileSync } from '../../src/small-file.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'session-refresher-small-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const FOLLOW = { maxBytes: 64, followLinks: true };
const NO_FOLLOW = { maxBytes: 64, followLinks: false };

/** Both readers agree on every case: the async one and the sync one used for the config. */
const readers = [
  ['readSmallFile', readSmallFile],
  ['readSmallFileSync', async (path: string, options: typeof FOLLOW) => readSmallFileSync(path, options)],
] as const;

for (const [name, read] of readers) {
  describe(name, () => {
    it('returns the bytes of a regular file, and undefined when nothing is at the path', async (t) => {
      const dir = await tempDir(t);
      await writeFile(join(dir, 'f'), 'hello\n');
      assert.equal((await read(join(dir, 'f'), NO_FOLLOW))?.toString(), 'hello\n');
      assert.equal(await read(join(dir, 'missing'), NO_FOLLOW), undefined);
    });

    it('returns a file of exactly the limit and refuses one byte more', async (t) => {
      const dir = await tempDir(t);
      await writeFile(join(dir, 'ok'), Buffer.alloc(64, 0x61));
      await writeFile(join(dir, 'big'), Buffer.alloc(65, 0x61));
      assert.equal((await read(join(dir, 'ok'), NO_FOLLOW))?.length, 64);
      await assert.rejects(read(join(dir, 'big'), NO_FOLLOW), (e: unknown) => e instanceof UnsafeFileError && /is 65 bytes, over the 64-byte limit/.test(e.message));
    });

    it('refuses a FIFO at once, with no writer on the other end (a blocking open would hang)', async (t) => {
      const dir = await tempDir(t);
      const fifo = join(dir, 'fifo');
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
      const started = Date.now();
      await assert.rejects(read(fifo, FOLLOW), (e: unknown) => e instanceof UnsafeFileError && e.reason === 'is a FIFO (named pipe), not a regular file');
      assert.ok(Date.now() - started < 1000);
    });

    it('refuses a directory and a unix socket', async (t) => {
      const dir = await tempDir(t);
      await assert.rejects(read(dir, FOLLOW), (e: unknown) => e instanceof UnsafeFileError && /is a directory/.test(e.reason));
      const server = createServer();
      const socket = join(dir, 'sock');
      await new Promise<void>((resolve) => server.listen(socket, resolve));
      t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
      await assert.rejects(read(socket, FOLLOW), (e: unknown) => e instanceof UnsafeFileError && /is a socket/.test(e.reason));
    });

    it('refuses a link to /dev/zero as a character device when following links, without reading it', async (t) => {
      const dir = await tempDir(t);
      await symlink('/dev/zero', join(dir, 'zero'));
      await assert.rejects(read(join(dir, 'zero'), { maxBytes: 1 << 20, followLinks: true }), (e: unknown) => e instanceof UnsafeFileError && e.reason === 'is a character device, not a regular file');
    });

    it('follows a link to a regular file only when asked; otherwise refuses the link itself', async (t) => {
      const dir = await tempDir(t);
      await writeFile(join(dir, 'target'), 'secret');
      await symlink(join(dir, 'target'), join(dir, 'link'));
      assert.equal((await read(join(dir, 'link'), FOLLOW))?.toString(), 'secret');
      await assert.rejects(read(join(dir, 'link'), NO_FOLLOW), (e: unknown) => e instanceof UnsafeFileError && /is a symbolic link, which is not followed/.test(e.reason));
      await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
      assert.equal(await read(join(dir, 'dangling'), FOLLOW), undefined, 'a dangling link followed is an absent file');
      await assert.rejects(read(join(dir, 'dangling'), NO_FOLLOW), UnsafeFileError, 'a dangling link not followed is still a link');
    });
  });
}
