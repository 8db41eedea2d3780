/**
 * `npm run demo` as a newcomer runs it: it tells the whole story and leaves no process or
 * file behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { ROOT } from '../helpers/paths.js';

/** Command lines of running processes that mention `text`. */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
    if (cmd.includes(text)) found.push(cmd.replace(/\0/g, ' '));
  }
  return found;
}

describe('the demo', { skip: skipWithoutNginx() }, () => {
  test('shows login, replay and the generation bump, exits 0, and leaves no process or file behind', async () => {
    const child = spawn(process.execPath, [`${ROOT}dist-test/test/demo/demo.js`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, out);
    assert.match(out, /It logged in once/);
    assert.match(out, /GET \/_config -> 200 in \d+ ms: nginx sent the session cookie/);
    assert.match(out, /The backend now refuses the cookie nginx holds/);
    assert.match(out, /GET \/_config -> 200 in \d+ ms\. Behind the scenes: the backend answered 401/);
    assert.match(out, /nginx now serves generation 2/);
    assert.match(out, /couch: generation 2; issued/);
    assert.match(out, /The daemon drained and exited 0/);

    const dir = /(\/\S*session-refresher-demo-\w+) removed/.exec(out)?.[1];
    assert.ok(dir, 'the demo names its temp directory');
    assert.ok(!(await readdir(tmpdir())).some((n) => dir.endsWith(n)), `${dir} is gone`);
    assert.deepEqual(await processesMentioning(dir), [], 'no process of the demo is left');
  });
});
