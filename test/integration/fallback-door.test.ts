/**
 * Only nginx gets into the fallback (real nginx, real pouchdb-server, the daemon as a child
 * process). The fallback replays requests with the service account's session, so a local
 * process that reached it would get that account's rights: without the install's key it gets
 * 403, nothing reaches the backend, nothing logs in or reloads, and the refusals are counted.
 */
import assert from 'node:assert/strict';
import { chmod, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { KEY_FILE_MODE, KEY_HEADER, readFallbackKey } from '../../src/nginx/fallback-key.js';
import type { Couch } from '../helpers/couch.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

const adminAuth = (couch: Couch) => `Basic ${Buffer.from(`${couch.admin.name}:${couch.admin.password}`).toString('base64')}`;
const daemonKey = (stack: Stack, key: string) => (stack.config.daemon as Record<string, string>)[key]!;

/** nginx's workers run as nobody:nogroup when the tests run as root; the socket must be theirs. */
const NOGROUP = 65534;

interface Answer {
  status: number;
  body: string;
}

/** One request straight to the daemon's fallback, as any local process could send it. */
function direct(listen: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const where = listen.startsWith('unix:') ? { socketPath: listen.slice(5) } : { host: listen.split(':')[0], port: Number(listen.split(':')[1]) };
  return new Promise((resolve, reject) => {
    const req = http.request({ ...where, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function counter(stack: Stack, series: string): Promise<number> {
  const text = await (await fetch(`http://${daemonKey(stack, 'admin_listen')}/metrics`)).text();
  return Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.split(' ')[1] ?? 0);
}

describe('only nginx gets into the fallback', { skip }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function stackWithDaemon(fallback: true | 'unix', before: (s: Stack) => Promise<unknown> = async () => undefined): Promise<{ stack: Stack; daemon: Daemon }> {
    const stack = await startStack({ fallback });
    cleanups.push(() => stack.stop());
    await before(stack);
    const root = process.getuid?.() === 0;
    const daemon = await startDaemon(stack.configPath, {}, fallback === 'unix' && root ? { gid: NOGROUP } : {});
    cleanups.push(() => daemon.stop());
    await stack.nginx.waitForGeneration(1);
    return { stack, daemon };
  }

  test('a local process without the key gets 403 for admin reads and writes: nothing reaches the backend, no login, no reload, one log line, every refusal counted', async () => {
    const { stack, daemon } = await stackWithDaemon(true);
    await stack.couch.settle();
    const logins = stack.couch.logins();
    const reloads = await stack.nginx.reloads();
    const listen = daemonKey(stack, 'listen');
    const spoofed = { 'x-session-refresher-session': 'couch', 'x-session-refresher-generation': '1' };
    const wrongKey = { ...spoofed, [KEY_HEADER]: 'ab'.repeat(32) };
    const attempts = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 3 === 0
          ? direct(listen, 'GET', '/_config/admins', spoofed)
          : i % 3 === 1
            ? direct(listen, 'PUT', `/_config/admins/intruder${i}`, { ...spoofed, 'content-type': 'application/json' }, '"letmein"')
            : direct(listen, 'GET', '/_users/_all_docs', wrongKey),
      ),
    );
    for (const answer of attempts) {
      assert.equal(answer.status, 403);
      assert.deepEqual(JSON.parse(answer.body), { error: 'forbidden' }, 'the body names neither the backend nor the user');
    }
    const admins = (await (await fetch(`${stack.couch.url}/_config/admins`, { headers: { authorization: adminAuth(stack.couch) } })).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(admins).filter((name) => name.startsWith('intruder')), [], 'no write reached the backend');
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), logins, 'spoofed generations forced no login');
    assert.equal(await stack.nginx.reloads(), reloads, 'and no reload');
    assert.equal(await counter(stack, 'session_refresher_fallback_forbidden_total{reason="key"}'), 30);
    const lines = daemon.events().filter((e) => /fallback request refused with 403/.test(String(e.msg)));
    assert.equal(lines.length, 1, 'a flood of refusals writes one line a minute, not one per request');
    assert.match(String(lines[0]!.msg), /fallback key.*regenerate its snippet with `session-refresher nginx-snippet`/);

    // nginx, which sends the key from the include the snippet names, still gets its 401s replayed.
    await stack.couch.rotateSecret();
    const through = await stack.get('/_config');
    assert.equal(through.status, 200, through.body);
  });

  test('on a unix socket (mode 0660, the daemon\'s group) nginx gets its 401s replayed; a request without the key is still refused', async () => {
    const { stack } = await stackWithDaemon('unix');
    const listen = daemonKey(stack, 'listen');
    const socket = await stat(listen.slice(5));
    assert.ok(socket.isSocket());
    assert.equal(socket.mode & 0o777, 0o660, 'only the daemon\'s user and group may connect');
    if (process.getuid?.() === 0) assert.equal(socket.gid, NOGROUP, 'the group the daemon runs with (nginx\'s workers\' here)');
    await stack.couch.rotateSecret();
    const through = await stack.get('/_config');
    assert.equal(through.status, 200, through.body);
    const refused = await direct(listen, 'GET', '/_config/admins', { 'x-session-refresher-session': 'couch' });
    assert.equal(refused.status, 403);
  });

  test('the daemon makes the key on its first start, 0640, and nginx sends it from its next reload on', async () => {
    const { stack, daemon } = await stackWithDaemon(true, async (s) => rm(daemonKey(s, 'fallback_key_file')));
    const keyFile = daemonKey(stack, 'fallback_key_file');
    const made = await daemon.waitForMsg(/created the fallback key/);
    assert.equal(made.fallback_key_file, keyFile);
    assert.equal((await stat(keyFile)).mode & 0o777, KEY_FILE_MODE);
    assert.match((await readFallbackKey(keyFile)) ?? '', /^[0-9a-f]{64}$/);
    // The start's login reloaded nginx, which read the new key with the new include.
    await stack.couch.rotateSecret();
    const through = await stack.get('/_config');
    assert.equal(through.status, 200, through.body);
    const key = (await readFile(keyFile, 'utf8')).match(/"([0-9a-f]{64})"/)![1]!;
    assert.ok(!daemon.log.lines.join('\n').includes(key), 'the key is never logged');
  });

  test('check says the key is in place and sent by nginx, and warns when nginx does not send it or others can read it', async () => {
    const stack = await startStack({ fallback: true });
    cleanups.push(() => stack.stop());
    const keyFile = daemonKey(stack, 'fallback_key_file');
    const good = await stack.cli(['check']);
    assert.match(good.stdout, new RegExp(`ok  fallback key: ${keyFile}: present, not readable by other users`));
    assert.match(good.stdout, new RegExp(`ok  session couch nginx fallback: location @session_refresh includes the fallback key ${keyFile}`));

    await chmod(keyFile, 0o644);
    const server = join(stack.nginx.prefix, 'session.server.conf');
    await writeFile(server, (await readFile(server, 'utf8')).replace(`include ${keyFile};`, ''));
    const loose = await stack.cli(['check']);
    const all = loose.stdout + loose.stderr;
    assert.match(all, new RegExp(`WARN  fallback key: ${keyFile} is readable by every user`));
    assert.match(all, /WARN  session couch nginx fallback: location @session_refresh does not include the fallback key .*403/);
  });
});
