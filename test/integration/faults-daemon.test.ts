/**
 * Faults on the daemon side: two daemons on one config, requests that try to steer the replay,
 * a backend that refuses the replay too, and a 64 MB body streamed through the fallback.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { writeDaemonConfig } from '../helpers/daemon-config.js';
import { placeholderInclude, skipWithoutNginx, startNginx, type Nginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { startScriptedCouch, type ScriptedCouch } from '../helpers/scripted-couch.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

const skip = skipWithoutNginx();

/** Peak resident set size of a process, in bytes (VmHWM). */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

describe('daemon faults', { skip }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  async function stackWithDaemon(): Promise<{ stack: Stack; daemon: Daemon }> {
    const stack = await startStack({ fallback: true });
    cleanups.push(() => stack.stop());
    const daemon = await startDaemon(stack.configPath);
    cleanups.push(() => daemon.stop());
    await stack.nginx.waitForGeneration(1);
    return { stack, daemon };
  }

  test('two daemons on one config log in once at start and once per invalidation', async () => {
    const { stack } = await stackWithDaemon();
    const other = await startDaemon(stack.configPath, { SESSION_REFRESHER_DAEMON_LISTEN: `127.0.0.1:${await freePort()}`, SESSION_REFRESHER_DAEMON_ADMIN_LISTEN: `127.0.0.1:${await freePort()}` });
    cleanups.push(() => other.stop());
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1, 'the second daemon found the fresh cookie');

    await stack.couch.rotateSecret();
    const key = await stack.asNginx();
    const listens = [(stack.config.daemon as { listen: string }).listen, String(/"listen":"([^"]+)"/.exec(other.log.lines.join('\n'))![1])];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`http://${listens[i % 2]}/_config`, { headers: { ...key, 'x-session-refresher-session': 'couch', 'x-session-refresher-generation': '1' } }).then((r) => r.status),
      ),
    );
    assert.deepEqual([...new Set(results)], [200]);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 2, 'one login for the invalidation, across both daemons');
  });

  test('a Host header or odd path cannot steer the replay: it only ever reaches the configured backend', async () => {
    const { stack } = await stackWithDaemon();
    const fallback = (stack.config.daemon as { listen: string }).listen;
    const headers = { ...(await stack.asNginx()), 'x-session-refresher-session': 'couch', 'x-session-refresher-generation': '0', host: 'evil.example', 'x-forwarded-host': 'evil.example' };
    const res = await fetch(`http://${fallback}/_config`, { headers });
    assert.equal(res.status, 200);
    assert.ok(((await res.json()) as Record<string, unknown>).couch_httpd_auth, 'answered by the configured backend');
    const odd = await fetch(`http://${fallback}/@evil.example/x`, { headers });
    assert.equal(odd.status, 404, 'the configured backend answered the odd path itself');
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1);
  });

  test('a 64 MB body is streamed through the fallback byte for byte while the daemon\'s memory stays bounded', async (t) => {
    const dir = await tempDir('sr-big-');
    cleanups.push(() => dir.remove());
    // nginx's workers (nobody) spool the body under the prefix: let them traverse the temp dir.
    await chmod(dir.path, 0o711);
    const backend: ScriptedCouch = await startScriptedCouch('svc', 'big-secret');
    cleanups.push(() => backend.stop());
    const include = join(dir.path, 'couch.conf');
    await writeFile(include, placeholderInclude(), { mode: 0o640 });
    await mkdir(join(dir.path, 'nginx'));
    const fallback = `127.0.0.1:${await freePort()}`;
    const nginx: Nginx = await startNginx({ prefix: join(dir.path, 'nginx'), include, backend: backend.url, fallback });
    cleanups.push(() => nginx.stop());
    const { configPath } = await writeDaemonConfig({ dir: dir.path, nginx, fallback, url: backend.url, username: 'svc', password: 'big-secret', include });
    const daemon = await startDaemon(configPath);
    cleanups.push(() => daemon.stop());
    await nginx.waitForGeneration(1);
    const before = await peakRss(daemon.child.pid!);

    backend.rotate();
    const body = randomBytes(64 * 1024 * 1024);
    const res = await fetch(`${nginx.url}/big`, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(res.status, 200, await res.clone().text());
    const answer = (await res.json()) as { bytes: number; sha256: string };
    assert.equal(answer.bytes, body.length);
    assert.equal(answer.sha256, createHash('sha256').update(body).digest('hex'));
    assert.equal(backend.logins(), 2);
    assert.equal(res.headers.get('set-cookie'), null, 'the backend\'s Set-Cookie did not reach the client');

    const afterFirst = await peakRss(daemon.child.pid!);
    // A second and third body the same size: a daemon that buffers would need another 64 MB each time.
    for (let i = 0; i < 2; i++) {
      backend.rotate();
      const again = await fetch(`${nginx.url}/big`, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(((await again.json()) as { bytes: number }).bytes, body.length);
    }
    const afterThird = await peakRss(daemon.child.pid!);
    const mb = (n: number) => (n / 1048576).toFixed(1);
    t.diagnostic(`daemon peak RSS on Node.js ${process.version}: before ${mb(before)} MB, after one 64 MB body ${mb(afterFirst)} MB, after three ${mb(afterThird)} MB`);
    // Streaming holds a few chunks; what is left is read buffers awaiting collection, bounded in
    // src/daemon/stream-garbage.ts (~33 MB on Node.js 20 and ~60 MB on 24 without it, 4-8 MB with it).
    assert.ok(afterFirst - before < 24 * 1024 * 1024, `one 64 MB body grew the daemon's peak RSS by ${mb(afterFirst - before)} MB on Node.js ${process.version}`);
    assert.ok(afterThird - afterFirst < 16 * 1024 * 1024, `two more bodies grew it by another ${mb(afterThird - afterFirst)} MB`);
  });
});
