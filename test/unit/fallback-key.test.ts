/**
 * The fallback key: made once, all or nothing, mode 0640; read back only from a key file this
 * tool wrote; compared so that only the exact key passes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, RefresherError } from '../../src/errors.js';
import { KEY_FILE_MODE, ensureFallbackKey, keyChecker, parseKeyFile, readFallbackKey, renderKeyFile } from '../../src/nginx/fallback-key.js';
import { tempDir } from '../helpers/tmp.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir('sr-key-');
  try {
    await fn(dir.path);
  } finally {
    await dir.remove();
  }
}

describe('ensureFallbackKey', () => {
  it('makes a 256-bit key once, mode 0640 whatever the umask, as an nginx include that sets the header', async () => {
    await withDir(async (dir) => {
      const path = join(dir, 'fallback-key.conf');
      const previous = process.umask(0o077);
      let made;
      try {
        made = await ensureFallbackKey(path);
      } finally {
        process.umask(previous);
      }
      assert.equal(made.created, true);
      assert.match(made.key, /^[0-9a-f]{64}$/);
      assert.equal((await stat(path)).mode & 0o777, KEY_FILE_MODE);
      const text = await readFile(path, 'utf8');
      assert.ok(text.includes(`proxy_set_header X-Session-Refresher-Key "${made.key}";`));
      assert.deepEqual(await ensureFallbackKey(path), { key: made.key, created: false }, 'a second call keeps the key');
      assert.deepEqual(await readdir(dir), ['fallback-key.conf'], 'no temporary file is left');
    });
  });

  it('gives every one of many concurrent callers the same key', async () => {
    await withDir(async (dir) => {
      const path = join(dir, 'fallback-key.conf');
      const results = await Promise.all(Array.from({ length: 20 }, () => ensureFallbackKey(path)));
      assert.equal(new Set(results.map((r) => r.key)).size, 1);
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(parseKeyFile(await readFile(path, 'utf8')), results[0]!.key);
    });
  });

  it('two installs get different keys', async () => {
    await withDir(async (dir) => {
      const [a, b] = await Promise.all([ensureFallbackKey(join(dir, 'a.conf')), ensureFallbackKey(join(dir, 'b.conf'))]);
      assert.notEqual(a.key, b.key);
    });
  });

  it('refuses a file it did not write, naming the key to change and what to do, and leaves it as it is', async () => {
    await withDir(async (dir) => {
      const path = join(dir, 'fallback-key.conf');
      for (const text of ['', 'proxy_set_header X-Session-Refresher-Key "short";\n', `proxy_set_header X-Session-Refresher-Key "${'g'.repeat(64)}";\n`, 'include /etc/passwd;\n']) {
        await writeFile(path, text);
        await assert.rejects(ensureFallbackKey(path), (e: unknown) => e instanceof ConfigError && /daemon\.fallback_key_file: .* holds no key written by session-refresher; delete it/.test(e.message));
        assert.equal(await readFile(path, 'utf8'), text);
      }
    });
  });

  it('refuses a symbolic link, a FIFO and a directory without blocking or following them', async () => {
    await withDir(async (dir) => {
      const target = join(dir, 'target.conf');
      await writeFile(target, renderKeyFile('c3'.repeat(32)));
      await symlink(target, join(dir, 'link.conf'));
      assert.equal(spawnSync('mkfifo', [join(dir, 'fifo.conf')]).status, 0);
      for (const [name, what] of [['link.conf', /symbolic link/], ['fifo.conf', /FIFO/], ['.', /directory/]] as const) {
        await assert.rejects(readFallbackKey(join(dir, name)), (e: unknown) => e instanceof ConfigError && what.test(e.message), name);
      }
    });
  });

  it('makes a missing directory (state_dir on a first run), and fails with one clear error naming the path and the key when it cannot', async () => {
    await withDir(async (dir) => {
      const made = await ensureFallbackKey(join(dir, 'state', 'fallback-key.conf'));
      assert.equal(made.created, true);
      await writeFile(join(dir, 'file'), 'not a directory');
      const path = join(dir, 'file', 'fallback-key.conf');
      await assert.rejects(ensureFallbackKey(path), (e: unknown) => e instanceof RefresherError && e.message.includes(path) && /daemon\.fallback_key_file/.test(e.message));
    });
  });
});

describe('keyChecker', () => {
  it('passes the exact key only', () => {
    const key = 'd4'.repeat(32);
    const matches = keyChecker(key);
    assert.equal(matches(key), true);
    for (const other of [undefined, '', key.slice(0, 63), `${key} `, ` ${key}`, key.toUpperCase(), 'e5'.repeat(32), [key]]) {
      assert.equal(matches(other), false, JSON.stringify(other));
    }
  });

  it('reads back what it renders', () => {
    const key = 'f6'.repeat(32);
    assert.equal(parseKeyFile(renderKeyFile(key)), key);
  });
});
