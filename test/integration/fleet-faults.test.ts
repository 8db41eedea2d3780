/**
 * A fleet (three nodes, a real redis-server) when Redis fails: while it is down no node logs in
 * or reloads for a valid cookie; after a backend invalidation each node logs in alone at most
 * once; when Redis returns the fleet converges on one cookie. And with its pub/sub connections
 * killed, a new generation still reaches every node within the poll interval.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { parseIncludeCookie } from '../../src/render/include.js';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../helpers/redis.js';

const skip = skipWithoutRedis() || skipWithoutNginx();
const POLL_SECONDS = 0.5;

/** The cookie in each node's include. */
async function cookies(fleet: TestFleet): Promise<(string | undefined)[]> {
  return Promise.all(fleet.nodes.map(async (n) => parseIncludeCookie((await n.stack.includeBytes()).toString('utf8'), 'auth_cookie')));
}

/** Waits until every nginx serves one generation at or past `atLeast` and every include holds one cookie; returns the generation. */
async function converged(fleet: TestFleet, atLeast: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // A probe may find nginx mid-reload (connection refused): that is not an answer, look again.
    const [generations, held] = await Promise.all([fleet.generations(), cookies(fleet)]).catch(() => [[], []] as [string[], (string | undefined)[]]);
    if (generations.length > 0 && new Set(generations).size === 1 && Number(generations[0]) >= atLeast && new Set(held).size === 1) return Number(generations[0]);
    if (Date.now() > deadline) assert.fail(`no convergence within ${timeoutMs} ms: generations ${generations.join(', ')}, ${new Set(held).size} distinct cookies`);
    await delay(50);
  }
}

describe('a fleet when Redis fails', { skip, timeout: 120_000 }, () => {
  let redis: RedisServer;
  let fleet: TestFleet;

  before(async () => {
    redis = await startRedis();
    fleet = await startFleet(3, redis, { poll_interval: POLL_SECONDS });
    await converged(fleet, 1, 20_000);
  });
  after(async () => {
    await fleet?.stop();
    await redis?.remove();
  });

  test('with its pub/sub connections killed, a new generation reaches every node within the poll interval', async () => {
    const before = await converged(fleet, 1, 5000);
    await redis.command(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    await fleet.couch.rotateSecret();
    // Only node 0 sees the rotation; the others learn of it from the store.
    assert.equal((await fleet.nodes[0]!.stack.get('/_config')).status, 200);
    const startedAt = Date.now();
    const after = await converged(fleet, before + 1, 5000);
    assert.ok(Date.now() - startedAt <= POLL_SECONDS * 1000 + 1000, `converged ${Date.now() - startedAt} ms after the publish`);
    assert.equal(after, before + 1);
  });

  test('Redis down: no login or reload for a valid cookie, at most one login per node after an invalidation, one cookie again once Redis is back', async () => {
    const before = await converged(fleet, 1, 5000);
    await fleet.couch.settle();
    const loginsBefore = fleet.couch.logins();
    const reloadsBefore = await Promise.all(fleet.nodes.map((n) => n.stack.nginx.reloads()));
    const marks = fleet.nodes.map((n) => n.daemon.mark());
    await redis.stop();
    await Promise.all(fleet.nodes.map((n, i) => n.daemon.waitForMsgAfter(marks[i]!, /lost redis at/, 10_000)));
    // Several poll intervals with Redis down and the cookie valid: requests are served, nothing else happens.
    for (let i = 0; i < 6; i++) assert.equal((await fleet.nodes[i % 3]!.stack.get('/_config')).status, 200);
    await delay(POLL_SECONDS * 1000 * 4);
    assert.equal(fleet.couch.logins(), loginsBefore, 'a node logged in while Redis was down and its cookie valid');
    assert.deepEqual(await Promise.all(fleet.nodes.map((n) => n.stack.nginx.reloads())), reloadsBefore, 'a node reloaded while Redis was down and its cookie valid');
    const status = await fleet.nodes[0]!.stack.cli(['status', '--json']);
    const cluster = (JSON.parse(status.stdout) as { sessions: { cluster: { connected: boolean; problem: string } }[] }).sessions[0]?.cluster;
    assert.equal(cluster?.connected, false, 'status says the store is unreachable');
    assert.match(cluster?.problem ?? '', /^redis at 127\.0\.0\.1:\d+: not connected within \d+s/);
    const check = await fleet.nodes[0]!.stack.cli(['check']);
    assert.match(check.stderr + check.stdout, /FAIL {2}cluster store: redis at 127\.0\.0\.1:\d+: not connected/);
    assert.equal(check.code, 75, 'check fails with EX_TEMPFAIL while the store is unreachable');

    await fleet.couch.rotateSecret();
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => fleet.nodes[i % 3]!.stack.get('/_config')));
    const errors = () => fleet.nodes.flatMap((n, i) => n.daemon.events().slice(marks[i]).filter((e) => e.level === 'error' || e.code !== undefined).map((e) => `${n.id}: ${String(e.code)} ${String(e.msg)}`));
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200], errors().join('\n'));
    await fleet.couch.settle();
    assert.ok(fleet.couch.logins() - loginsBefore <= 3, `${fleet.couch.logins() - loginsBefore} logins for three nodes`);

    await redis.start();
    await converged(fleet, before + 1, 10_000);
    const generations = (await fleet.generations()).map(Number);
    assert.ok(generations.every((g) => g > before), `a generation went down: ${generations.join(', ')} after ${before}`);
  });
});
