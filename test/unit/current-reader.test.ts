/**
 * The request path's view of the session (CurrentReader): what it answers is always what is on
 * disk, whoever changed it and however (a rename as our writes do, a write in place, a removal),
 * and whether the cookie is valid follows the clock, not the moment it was read.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SessionConfig } from '../../src/config/schema.js';
import { CurrentReader, readCurrent } from '../../src/daemon/current.js';
import { sha256 } from '../../src/refresh/fresh.js';
import { renderInclude } from '../../src/render/include.js';
import { writeAtomic } from '../../src/render/write.js';
import { writeState } from '../../src/state/store.js';
import { tempDir } from '../helpers/tmp.js';

const HOUR = 3_600_000;

async function setup(fn: (dir: string, session: SessionConfig, put: (generation: number, value: string, expires: number) => Promise<string>) => Promise<void>): Promise<void> {
  const dir = await tempDir('sr-current-');
  try {
    const session = { name: 'couch', include: join(dir.path, 'couch.conf'), variable: 'auth_cookie', cookie_name: 'AuthSession' } as SessionConfig;
    const put = async (generation: number, value: string, expires: number): Promise<string> => {
      const text = renderInclude({ session: 'couch', variable: 'auth_cookie', cookieName: 'AuthSession', value, generation, issued: new Date(expires - HOUR), expires: new Date(expires) });
      await writeAtomic(session.include, text, { mode: 0o640 });
      await writeState(dir.path, 'couch', { generation, expires: new Date(expires).toISOString(), include_sha256: sha256(text), last_login: new Date().toISOString() });
      return text;
    };
    await fn(dir.path, session, put);
  } finally {
    await dir.remove();
  }
}

describe('CurrentReader', () => {
  it('answers what readCurrent reads, and follows each new include and state written by rename', async () => {
    await setup(async (dir, session, put) => {
      const reader = new CurrentReader(dir, session);
      const now = Date.now();
      for (const [generation, value] of [[1, 'YWFh'], [2, 'YmJi'], [3, 'Y2Nj']] as const) {
        await put(generation, value, now + HOUR);
        const got = await reader.read(now);
        assert.deepEqual(got, await readCurrent(dir, session, now));
        assert.equal(got.generation, generation);
        assert.equal(got.cookie, `AuthSession=${value}`);
        assert.equal(got.valid, true);
        assert.deepEqual(await reader.read(now), got, 'asked again, the same answer');
      }
    });
  });

  it('sees an include edited in place with the same length, and a removed include', async () => {
    await setup(async (dir, session, put) => {
      const reader = new CurrentReader(dir, session);
      const text = await put(4, 'ZGRk', Date.now() + HOUR);
      assert.equal((await reader.read()).valid, true);
      await writeFile(session.include, text.replace('ZGRk', 'ZWVl'));
      const edited = await reader.read();
      assert.equal(edited.cookie, 'AuthSession=ZWVl');
      assert.equal(edited.valid, false, 'an include edited by hand is not the one last written');
      await rm(session.include);
      const removed = await reader.read();
      assert.equal(removed.cookie, undefined);
      assert.equal(removed.valid, false);
    });
  });

  it('turns invalid when the cookie expires, without anything on disk changing', async () => {
    await setup(async (dir, session, put) => {
      const reader = new CurrentReader(dir, session);
      const expires = Date.now() + HOUR;
      await put(5, 'ZmZm', expires);
      assert.equal((await reader.read(expires - 1)).valid, true);
      assert.equal((await reader.read(expires + 1)).valid, false);
    });
  });
});
