/**
 * `session-refresher run` against the real stack: pouchdb-server behind a real nginx whose
 * `error_page 401 = @session_refresh` sends rejected requests to the daemon's fallback.
 * Sessions are invalidated on the backend by rotating its cookie secret.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { runCli } from '../helpers/cli.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

function basic(stack: Stack): string {
  return `Basic ${Buffer.from(`${stack.couch.admin.name}:${stack.couch.admin.password}`).toString('base64')}`;
}

/** Polls a condition that changes on its own schedule (reloads, timers); bounded. */
async function eventually<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await probe();
  }
  return last;
}

describe('run (the daemon)', { skip }, () => {
  let stack: Stack;
  let daemon: Daemon | undefined;
  beforeEach(async () => {
    stack = await startStack({ fallback: true });
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    await stack.stop();
  });

  const fallbackUrl = () => `http://${(stack.config.daemon as { listen: string }).listen}`;
  const adminUrl = () => `http://${(stack.config.daemon as { admin_listen: string }).admin_listen}`;
  const start = async (env: NodeJS.ProcessEnv = {}) => {
    daemon = await startDaemon(stack.configPath, env);
    await stack.nginx.waitForGeneration(1);
    await stack.couch.settle();
    return daemon;
  };

  test('logs in at start, and after the backend drops the session a client still gets 200 with exactly one more login', async () => {
    await start();
    assert.equal(stack.couch.logins(), 1);
    assert.equal((await stack.get('/_config')).status, 200);

    await stack.couch.rotateSecret();
    const res = await stack.get('/_config');
    assert.equal(res.status, 200, res.body);
    assert.ok(JSON.parse(res.body).couch_httpd_auth, 'the admin-only config document came back');
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 2);
    await stack.nginx.waitForGeneration(2);
    assert.equal((await stack.get('/_config')).status, 200, 'nginx now sends the new cookie itself');
  });

  test('a 1 MB PUT body after invalidation reaches the backend byte-identical', async () => {
    await start();
    await stack.couch.rotateSecret();
    // /_config is admin-only on the backend, so this PUT fails unless it is replayed with a fresh
    // session; the value stored is the body as the backend received it.
    const value = randomBytes(768 * 1024).toString('base64');
    const body = JSON.stringify(value);
    assert.ok(body.length > 1024 * 1024);
    const put = await fetch(`${stack.nginx.url}/_config/blobs/big`, { method: 'PUT', body, headers: { 'content-type': 'application/json' } });
    assert.equal(put.status, 200, await put.text());
    const back = await fetch(`${stack.couch.url}/_config/blobs/big`, { headers: { authorization: basic(stack) } });
    assert.equal(back.status, 200);
    assert.equal(await back.json(), value, 'the stored value equals the body sent');
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 2);
  });

  test('200 concurrent requests after invalidation all succeed with exactly one login', async () => {
    await start();
    await stack.couch.rotateSecret();
    const results = await Promise.all(Array.from({ length: 200 }, () => stack.get('/_config')));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 200, `statuses: ${[...new Set(statuses)].join(',')}`);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 2, 'one login at start, one for the whole storm');
  });

  test('a request carrying a stale generation is replayed with the current cookie, without a login', async () => {
    await start();
    const res = await fetch(`${fallbackUrl()}/_config`, { headers: { ...(await stack.asNginx()), 'x-session-refresher-session': 'couch', 'x-session-refresher-generation': '0' } });
    assert.equal(res.status, 200, await res.clone().text());
    assert.ok(((await res.json()) as Record<string, unknown>).couch_httpd_auth);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1);
  });

  test('the fallback refuses requests without the session header, for unknown sessions, and absolute or //host targets', async () => {
    await start();
    const key = await stack.asNginx();
    const plain = await fetch(`${fallbackUrl()}/_config`, { headers: key });
    assert.equal(plain.status, 400);
    assert.match(await plain.text(), /missing x-session-refresher-session/);
    const unknown = await fetch(`${fallbackUrl()}/_config`, { headers: { ...key, 'x-session-refresher-session': 'nope' } });
    assert.equal(unknown.status, 400);
    for (const target of ['http://evil.example/_config', '//evil.example/_config']) {
      const raw = await rawRequest(fallbackUrl(), `GET ${target} HTTP/1.1\r\nHost: x\r\nX-Session-Refresher-Key: ${Object.values(key)[0]}\r\nX-Session-Refresher-Session: couch\r\nConnection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 400 /, `${target}: ${raw.split('\r\n')[0]}`);
    }
    const connect = await rawRequest(fallbackUrl(), 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nX-Session-Refresher-Session: couch\r\n\r\n');
    assert.match(connect, /^HTTP\/1\.1 405 /);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1, 'no refused request caused a login');
  });

  test('after a password rotation on the backend, clients get 503 with Retry-After and logins stay rate-limited', async () => {
    await start();
    await stack.couch.setAdminPassword('rotated-elsewhere');
    await stack.couch.rotateSecret();
    await stack.couch.settle();
    const attemptsBefore = stack.couch.loginAttempts();

    const results = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const res = await fetch(`${stack.nginx.url}/_config`);
        return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
      }),
    );
    for (const r of results) {
      assert.equal(r.status, 503, r.body);
      assert.match(r.retryAfter ?? '', /^\d+$/);
      const body = JSON.parse(r.body) as { error: string; request_id: string };
      assert.equal(body.error, 'session_unavailable');
      // The client gets a request id; the cause is in the daemon's log line with that id.
      assert.match(body.request_id, /^[0-9a-f-]{36}$/);
      const line = JSON.parse(await daemon!.log.waitFor(new RegExp(`"request_id":"${body.request_id}"`), 10_000, 'the log line of the 503')) as Record<string, unknown>;
      assert.equal(line.code, 'ERR_CREDENTIALS_REJECTED');
      assert.ok(!r.body.includes('rotated-elsewhere') && !r.body.includes(stack.couch.admin.name + ':'), 'no secret in the body');
    }
    // Thirty more, one after another: they are answered from the backoff, not by new logins.
    for (let i = 0; i < 30; i++) assert.equal((await fetch(`${stack.nginx.url}/_config`)).status, 503);
    await stack.couch.settle();
    const attempts = stack.couch.loginAttempts() - attemptsBefore;
    assert.ok(attempts >= 1 && attempts <= 3, `login attempts during 60 requests: ${attempts}`);
  });

  test('a replaced password file is used for the next login without a restart', async () => {
    await start();
    await stack.couch.setAdminPassword('the-new-password');
    const mark = daemon!.mark();
    const tmp = `${stack.passwordFile}.new`;
    await writeFile(tmp, 'the-new-password\n', { mode: 0o600 });
    await rename(tmp, stack.passwordFile);
    await daemon!.waitForMsgAfter(mark, /nginx reloaded/, 20_000);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 2, 'logged in again with the new password');
    await stack.nginx.waitForGeneration(2);
    await stack.couch.rotateSecret();
    const res = await stack.get('/_config');
    assert.equal(res.status, 200, res.body);
  });

  test('a password rotated on the backend and in the file, met first by a client\'s 401: one login, not a second one for the file change', async () => {
    await start();
    await stack.nginx.waitForGeneration(1);
    await stack.couch.settle();
    const logins = stack.couch.logins();
    const mark = daemon!.mark();
    // The backend's password changes (its cookies die with the old salt), and so does the file.
    await stack.couch.setAdminPassword('rotated-with-the-file');
    const tmp = `${stack.passwordFile}.new`;
    await writeFile(tmp, 'rotated-with-the-file\n', { mode: 0o600 });
    await rename(tmp, stack.passwordFile);
    const res = await stack.get('/_config');
    assert.equal(res.status, 200, res.body);
    await daemon!.waitForMsgAfter(mark, /the secret file changed/, 10_000);
    await stack.nginx.waitForGeneration(2, 10_000);
    // A second login would follow the watcher's line at once; give it that long to show.
    await delay(500);
    await stack.couch.settle();
    assert.equal(stack.couch.logins() - logins, 1, `one login for one rotation, whichever came first: the 401 or the file watcher; ${daemon!.events().slice(mark).map((e) => String(e.msg)).join(' | ')}`);
  });

  test('/healthz turns 503 when the cookie expires and login keeps failing, and 200 again after', async () => {
    stack.session.lifetime = 3;
    await stack.writeConfig();
    await start();
    const health = async () => {
      const res = await fetch(`${adminUrl()}/healthz`);
      return { status: res.status, body: (await res.json()) as { ok: boolean; sessions: { seconds_left: number | null; error: { code: string } | null }[] } };
    };
    assert.equal((await health()).status, 200);

    await stack.couch.setAdminPassword('rotated-elsewhere');
    const down = await eventually('healthz 503', health, (h) => h.status === 503, 15_000);
    assert.equal(down.body.ok, false);
    assert.equal(down.body.sessions[0]!.error?.code, 'ERR_CREDENTIALS_REJECTED');
    // An expired cookie is never served: the include falls back to an empty value.
    await eventually('the include to be emptied', () => stack.includeBytes().then(String), (t) => /^set \$auth_cookie "";$/m.test(t), 15_000);

    await writeFile(stack.passwordFile, 'rotated-elsewhere\n');
    const up = await eventually('healthz 200', health, (h) => h.status === 200, 15_000);
    assert.equal(up.body.ok, true);
    const metrics = await (await fetch(`${adminUrl()}/metrics`)).text();
    assert.match(metrics, /session_refresher_logins_total\{session="couch",result="rejected"\} [1-9]/);
    assert.match(metrics, /session_refresher_cookie_seconds_left\{session="couch"\} \d/);
  });

  test('SIGTERM during a slow replay lets the replay complete, then the daemon exits 0', async () => {
    await start({ SESSION_REFRESHER_LOG_LEVEL: 'debug' });
    assert.equal((await fetch(`${stack.couch.url}/slow`, { method: 'PUT', headers: { authorization: basic(stack) } })).status, 201);
    const seq = ((await (await fetch(`${stack.couch.url}/slow`, { headers: { authorization: basic(stack) } })).json()) as { update_seq: unknown }).update_seq;
    // A long-poll the real backend holds open until the database changes: a slow request, no script needed.
    const pending = fetch(`${fallbackUrl()}/slow/_changes?feed=longpoll&since=${encodeURIComponent(String(seq))}`, {
      headers: { ...(await stack.asNginx()), 'x-session-refresher-session': 'couch', 'x-session-refresher-generation': '0' },
    }).then(async (r) => ({ status: r.status, body: await r.text() }));
    await daemon!.waitForMsg(/fallback: request received/);
    const code = daemon!.stop('SIGTERM');
    await daemon!.waitForMsg(/shutting down/);
    // Only now does the replayed request get its answer.
    const put = await fetch(`${stack.couch.url}/slow/after-sigterm`, { method: 'PUT', body: '{}', headers: { authorization: basic(stack), 'content-type': 'application/json' } });
    assert.equal(put.status, 201);
    const res = await pending;
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /"id":"after-sigterm"/, 'the long-poll answer came through');
    assert.equal(await code, 0);
    await daemon!.waitForMsg(/stopped/);
    const events = daemon!.events().map((e) => e.msg);
    assert.ok(events.indexOf('fallback: request replayed') < events.indexOf('stopped'));
  });

  test('an include deleted or edited by hand is restored byte for byte from the current session, without a login', async () => {
    await start();
    const good = await stack.includeBytes();
    let mark = daemon!.mark();
    await unlink(stack.include);
    await daemon!.waitForMsgAfter(mark, /include was changed or removed by hand: restored/);
    assert.deepEqual(await stack.includeBytes(), good);

    mark = daemon!.mark();
    await writeFile(stack.include, 'set $auth_cookie "AuthSession=hand-edited";\nset $auth_cookie_generation "99";\n');
    await daemon!.waitForMsgAfter(mark, /include was changed or removed by hand: restored/);
    assert.deepEqual(await stack.includeBytes(), good);
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1);
    await stack.nginx.waitForGeneration(1);
    assert.equal((await stack.get('/_config')).status, 200);
  });

  test('a changed config file is applied when valid and kept as it was, with a clear error, when not', async () => {
    await start();
    let mark = daemon!.mark();
    await writeFile(stack.configPath, 'sessions:\n  - name: couch\n    bogus_key: 1\n');
    const refused = await daemon!.waitForMsgAfter(mark, /configuration not applied, keeping the running one: .*unknown key sessions\[0\] \(couch\)\.bogus_key/);
    assert.equal(refused.level, 'error');
    assert.equal((await fetch(`${adminUrl()}/healthz`)).status, 200, 'still serving with the old configuration');

    mark = daemon!.mark();
    stack.session.lifetime = 900;
    await stack.writeConfig();
    await daemon!.waitForMsgAfter(mark, /configuration applied/);

    mark = daemon!.mark();
    daemon!.child.kill('SIGHUP');
    const applied = await daemon!.waitForMsgAfter(mark, /configuration applied/);
    assert.equal(applied.why, 'SIGHUP');
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1, 'a config reload does not log in again while the cookie is fresh');
  });

  test('with verify_url, a reload is confirmed by nginx serving the new generation', async () => {
    stack.session.verify_url = stack.nginx.probeUrl;
    await stack.writeConfig();
    await start();
    await stack.couch.rotateSecret();
    assert.equal((await stack.get('/_config')).status, 200);
    await stack.nginx.waitForGeneration(2);
    const metrics = await (await fetch(`${adminUrl()}/metrics`)).text();
    assert.match(metrics, /session_refresher_nginx_reloads_total\{result="ok"\} 2/);
    assert.doesNotMatch(metrics, /result="unverified"/);
    assert.match(metrics, /session_refresher_refreshes_total\{session="couch",trigger="fallback"\} 1/);
    assert.match(metrics, /session_refresher_replays_total\{session="couch",outcome="replayed"\} 1/);
    assert.match(metrics, /session_refresher_fallback_duration_seconds_count\{session="couch"\} 1/);
  });

  test('every log line names its component, and session-specific lines name the session', async () => {
    await start();
    const mark = daemon!.mark();
    await stack.couch.rotateSecret();
    assert.equal((await stack.get('/_config')).status, 200);
    // The replay answers as soon as the login has a cookie; the reload is logged after it.
    await daemon!.waitForMsgAfter(mark, /nginx reloaded/);
    const events = daemon!.events();
    assert.ok(events.length > 5);
    for (const e of events) assert.equal(typeof e.component, 'string', JSON.stringify(e));
    for (const e of events.filter((e) => /logging in|nginx reloaded|fallback: request replayed|include written/.test(String(e.msg)))) assert.equal(e.session, 'couch', JSON.stringify(e));
    const cookie = /AuthSession=([^"]+)"/.exec((await stack.includeBytes()).toString())![1]!;
    assert.ok(!daemon!.log.lines.join('\n').includes(cookie), 'no cookie in the logs');
    assert.ok(!daemon!.log.lines.join('\n').includes(stack.couch.admin.password), 'no password in the logs');
  });

  test('refresh-now and run side by side never replace one cookie twice: every new generation is one login or one renewal', async () => {
    stack.session.lifetime = 4;
    await stack.writeConfig();
    await start();
    // Cron-like runs next to the daemon for about two lifetimes.
    let cliLogins = 0;
    let cliRenewals = 0;
    const until = Date.now() + 8_000;
    while (Date.now() < until) {
      const runs = await Promise.all([runCli(['refresh-now', '--config', stack.configPath]), runCli(['refresh-now', '--config', stack.configPath])]);
      for (const r of runs) {
        assert.equal(r.code, 0, r.stderr);
        if (/: logged in, /.test(r.stdout)) cliLogins++;
        if (/: renewed without the password, /.test(r.stdout)) cliRenewals++;
      }
    }
    const metrics = await (await fetch(`http://${(stack.config.daemon as { admin_listen: string }).admin_listen}/metrics`)).text();
    const counter = (series: string) => Number(metrics.split('\n').find((line) => line.startsWith(`${series} `))?.split(' ')[1] ?? 0);
    await daemon!.stop();
    daemon = undefined;
    await stack.couch.settle();
    const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
    const daemonLogins = counter('session_refresher_logins_total{session="couch",result="ok"}');
    const daemonRenewals = counter('session_refresher_renewals_total{session="couch"}');
    assert.ok(status.generation >= 3, `the cookie was replaced over two lifetimes (generation ${status.generation})`);
    assert.equal(stack.couch.logins(), daemonLogins + cliLogins, 'every login the backend saw was made and reported by one of them');
    assert.equal(status.generation, daemonLogins + cliLogins + daemonRenewals + cliRenewals, 'every new generation came from exactly one login or one renewal');
    assert.ok(daemonRenewals + cliRenewals > 0, 'cookies past half their life were renewed, not replaced by a login');
  });
});

function rawRequest(base: string, text: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return import('node:net').then(
    ({ connect }) =>
      new Promise((resolve, reject) => {
        const socket = connect(Number(port), hostname, () => socket.write(text));
        let out = '';
        socket.on('data', (d) => (out += d.toString('latin1')));
        socket.on('end', () => resolve(out));
        socket.on('error', reject);
        socket.setTimeout(5000, () => {
          socket.destroy();
          resolve(out);
        });
      }),
  );
}
