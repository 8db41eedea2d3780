/**
 * The 401 path asks the backend, not a timer (real nginx, real pouchdb-server, the daemon as a
 * child process): a dead session is replaced at once whatever its age, a 401 about the request
 * (a valid session without the rights) goes back to the client without a login, backend nodes
 * that refuse each other's cookies do not make a login loop, and scheduled refreshes renew
 * without the password.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, test } from 'node:test';
import { readState } from '../../src/state/store.js';
import { startBalancer } from '../helpers/balancer.js';
import { startCouch, type Couch } from '../helpers/couch.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

const adminAuth = (couch: Couch) => `Basic ${Buffer.from(`${couch.admin.name}:${couch.admin.password}`).toString('base64')}`;
const adminListen = (stack: Stack) => (stack.config.daemon as { admin_listen: string }).admin_listen;

/**
 * GET on a connection of its own: nginx reloads every second in the loop test, and an old
 * worker closes the kept-alive connections it idles on, which a pooled client would meet.
 */
function getFresh(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

/** One sample of a Prometheus counter (0 when the series does not exist yet). */
async function counter(stack: Stack, series: string): Promise<number> {
  const text = await (await fetch(`http://${adminListen(stack)}/metrics`)).text();
  return Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.split(' ')[1] ?? 0);
}

describe('the 401 path asks the backend', { skip }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function stackWithDaemon(options: Parameters<typeof startStack>[0] = {}, prepare: (s: Stack) => unknown = () => undefined): Promise<{ stack: Stack; daemon: Daemon }> {
    const stack = await startStack({ fallback: true, ...options });
    cleanups.push(() => stack.stop());
    await prepare(stack);
    await stack.writeConfig();
    const daemon = await startDaemon(stack.configPath);
    cleanups.push(() => daemon.stop());
    await stack.nginx.waitForGeneration(1);
    return { stack, daemon };
  }

  test('a backend restart 0.1 s, 1 s and 3 s after a login: 200 concurrent requests all get 200, with exactly one login each time', async () => {
    const { stack } = await stackWithDaemon();
    for (const afterMs of [100, 1000, 3000]) {
      await stack.couch.settle();
      const logins = stack.couch.logins();
      const state = await readState(stack.stateDir, 'couch');
      await delay(Math.max(0, Date.parse(state!.obtained_at!) + afterMs - Date.now()));
      await stack.couch.rotateSecret();
      const results = await Promise.all(Array.from({ length: 200 }, () => stack.get('/_config')));
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 200).length, 200, `restart ${afterMs} ms after the login: statuses ${[...new Set(statuses)].join(',')}`);
      await stack.couch.settle();
      assert.equal(stack.couch.logins(), logins + 1, `restart ${afterMs} ms after the login: one login for the whole burst`);
    }
  });

  test('a service account without the rights gets the backend\'s own 401 on an admin path: 100 requests, no login, one probe per 250 ms', async (t) => {
    const { stack, daemon } = await stackWithDaemon({}, async (s) => {
      // The service account is an ordinary user: it may log in but is not a server admin.
      const res = await fetch(`${s.couch.url}/_users/org.couchdb.user:reader`, {
        method: 'PUT',
        headers: { authorization: adminAuth(s.couch), 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'reader', password: 'reader-pass', roles: [], type: 'user' }),
      });
      assert.equal(res.status, 201, await res.text());
      s.session.username = 'reader';
      await writeFile(s.passwordFile, 'reader-pass\n');
    });
    await stack.couch.settle();
    const logins = stack.couch.logins();
    assert.equal(logins, 1);

    const began = Date.now();
    const results = await Promise.all(Array.from({ length: 100 }, () => stack.get('/_config')));
    t.diagnostic(`burst of 100 answered in ${Date.now() - began} ms`);
    assert.deepEqual([...new Set(results.map((r) => r.status))], [401], 'every client gets the backend\'s answer');
    assert.match(results[0]!.body, /You are not a server admin/, 'the body is the backend\'s own');
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), logins, 'a 401 about the request never costs a login');
    // A 401 is answered by the first probe sent after it arrived, and probes go out at most once
    // per 250 ms; a loaded machine can spread the burst's arrival at the fallback over longer.
    const probes = await counter(stack, 'session_refresher_probes_total{session="couch",trigger="unauthorized",result="alive"}');
    const burstMs = Date.now() - began;
    assert.ok(probes >= 1 && probes <= 1 + Math.floor(burstMs / 250), `${probes} probes for a burst of ${burstMs} ms`);
    assert.equal(await counter(stack, 'session_refresher_replays_total{session="couch",outcome="not_session"}'), 100);
    const warned = await daemon.waitForMsg(/fallback: request replayed; a 401 reached the client/);
    assert.equal(warned.level, 'warn');
    assert.match(String(warned.reason), /authorization answer/);
  });

  test('backend nodes with different cookie secrets: logins stay at one per second, and the log, /healthz and status name the cause', async (t) => {
    const a = await startCouch();
    cleanups.push(() => a.stop());
    const b = await startCouch();
    cleanups.push(() => b.stop());
    await Promise.all([a.rotateSecret(), b.rotateSecret()]);
    const balancer = await startBalancer([a.url, b.url]);
    cleanups.push(() => balancer.stop());
    const { stack, daemon } = await stackWithDaemon({ couch: a, url: balancer.url });

    const started = Date.now();
    const statuses = new Map<number, number>();
    while (Date.now() - started < 6000) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => getFresh(`${stack.nginx.url}/_config`)));
      for (const status of batch) statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    const seconds = (Date.now() - started) / 1000;
    await Promise.all([a.settle(), b.settle()]);
    const logins = a.logins() + b.logins();
    t.diagnostic(`${logins} logins in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.ok(logins <= Math.ceil(seconds) + 2, `${logins} logins in ${seconds.toFixed(1)} s (statuses ${JSON.stringify([...statuses])})`);
    assert.ok((statuses.get(503) ?? 0) > 0, 'clients held off by the loop guard get 503 with Retry-After');

    const line = await daemon.waitForMsg(/the backend refused a cookie it issued \d+ ms earlier/);
    assert.equal(line.code, 'ERR_SESSION_LOOP');
    const health = await fetch(`http://${adminListen(stack)}/healthz`);
    assert.equal(health.status, 503);
    const session = ((await health.json()) as { sessions: { error: { code: string; message: string } | null }[] }).sessions[0]!;
    assert.equal(session.error?.code, 'ERR_SESSION_LOOP');
    assert.match(session.error.message, /share the same cookie secret/);
    const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
    assert.equal(status.alert.code, 'ERR_SESSION_LOOP');
    assert.match(status.alert.message, /refused a cookie it issued \d+ ms earlier/);
    assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
  });

  test('ten scheduled refreshes against a backend with a 5 s session timeout: one login, nine renewals, and the session outlives its timeout', async () => {
    const { stack, daemon } = await stackWithDaemon({}, (s) => {
      Object.assign(s.session, { schedule: '* * * * * *', schedule_only: true, lifetime: 5 });
    });
    const res = await fetch(`${stack.couch.url}/_config/couch_httpd_auth/timeout`, { method: 'PUT', headers: { authorization: adminAuth(stack.couch) }, body: JSON.stringify('5') });
    assert.equal(res.status, 200);
    for (let renewals = 0; renewals < 9; ) {
      const mark = daemon.mark();
      const line = await daemon.waitForMsgAfter(mark, /include written and accepted by nginx -t/, 5000);
      if (line.obtained_by === 'renewal') renewals++;
      else assert.fail(`a scheduled refresh logged in instead of renewing: ${JSON.stringify(line)}`);
    }
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 1, 'only the first cookie cost a login');
    const state = await readState(stack.stateDir, 'couch');
    assert.equal(state?.obtained_by, 'renewal');
    // The schedule keeps renewing every second while the test looks: any later generation is a renewal too.
    await stack.nginx.waitForGeneration(state!.generation, 10_000, { atLeast: true });
    assert.equal((await stack.get('/_config')).status, 200, 'the renewed cookie works, past the 5 s the first one had');
    assert.ok(await counter(stack, 'session_refresher_renewals_total{session="couch"}') >= 9);
    const status = (await stack.cli(['status'])).stdout;
    assert.match(status, /obtained by renewal \(no password\)/);
  });

  test('a routine reload deferred by max_reloads_per_minute holds up no recovery: the new cookie is served at once', async () => {
    const { stack, daemon } = await stackWithDaemon({}, (s) => {
      // Renew every second; the start's reload fills the minute, so every renewal's reload waits.
      Object.assign(s.session, { schedule: '* * * * * *', schedule_only: true });
      (s.config.daemon as Record<string, unknown>).max_reloads_per_minute = 1;
    });
    const renewed = await daemon.waitForMsg(/include written and accepted by nginx -t/);
    assert.ok(renewed.generation === 1 || renewed.obtained_by === 'renewal');
    await daemon.waitForMsgAfter(0, /renewing the session/);
    await stack.couch.settle();
    const mark = daemon.mark();
    const rotatedAt = Date.now() - 5;
    await stack.couch.rotateSecret();
    const res = await stack.get('/_config');
    await daemon.waitForMsgAfter(mark, /fallback: request replayed/).catch(() => undefined);
    assert.equal(res.status, 200, `${res.body}\n${daemon.log.lines.slice(mark).join('\n')}`);
    // Renewals go on every second; find the login among the lines written since the rotation.
    const written = () => daemon.events().filter((e) => e.msg === 'include written and accepted by nginx -t' && Date.parse(String(e.time)) >= rotatedAt);
    while (!written().some((e) => e.obtained_by === 'login')) await daemon.waitForMsgAfter(daemon.mark(), /include written and accepted by nginx -t/, 10_000);
    const login = written().find((e) => e.obtained_by === 'login')!;
    await stack.couch.settle();
    assert.equal(stack.couch.logins(), 2, 'one login at start, one for the invalidation');
    // Served without waiting for the reload cap's minute: the reload replacing a refused cookie is urgent.
    await stack.nginx.waitForGeneration(Number(login.generation), 5000);
  });

  test('the generation gauge follows the include on disk, also when refresh-now rotated it', async () => {
    const { stack } = await stackWithDaemon();
    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 0, run.stderr);
    const generation = (await readState(stack.stateDir, 'couch'))!.generation;
    assert.equal(generation, 2);
    const series = 'session_refresher_generation{session="couch"}';
    const deadline = Date.now() + 10_000;
    while ((await counter(stack, series)) !== generation) {
      assert.ok(Date.now() < deadline, `the gauge still says ${await counter(stack, series)}, the include says ${generation}`);
      await delay(50);
    }
  });
});
