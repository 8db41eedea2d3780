/**
 * A login that outlives the fleet's lock three times over: the node holding the lock keeps
 * renewing it, so no other node takes it and logs in too. Three nodes on one real
 * pouchdb-server and one real redis-server; the logins are held by an instrument in front of
 * the backend (test/helpers/slow-login.ts), every answer is the backend's own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../helpers/redis.js';
import { startSlowLogin, type SlowLogin } from '../helpers/slow-login.js';

const skip = skipWithoutRedis() || skipWithoutNginx();
const LOCK_TTL_S = 1;

describe('a fleet whose login takes three times the lock TTL', { skip, timeout: 120_000 }, () => {
  let redis: RedisServer;
  let slow: SlowLogin | undefined;
  let fleet: TestFleet;

  before(async () => {
    redis = await startRedis();
    fleet = await startFleet(3, redis, { lock_ttl: LOCK_TTL_S, wait_timeout: 8 }, async (backend) => {
      slow = await startSlowLogin(backend);
      return slow.url;
    });
  });
  after(async () => {
    await fleet?.stop();
    await slow?.stop();
    await redis?.remove();
  });

  test('a rotation under 60 requests over the three nginx: one login, held 3x the TTL, every request 200', async () => {
    await Promise.all(fleet.nodes.map((n) => n.stack.nginx.waitForGeneration(1, 20_000)));
    await fleet.couch.settle();
    assert.equal(fleet.couch.logins(), 1);

    slow!.delayMs = 3 * LOCK_TTL_S * 1000;
    await fleet.couch.rotateSecret();
    const began = Date.now();
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => fleet.nodes[i % 3]!.stack.get('/_config')));
    const took = Date.now() - began;
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 60, `statuses: ${[...new Set(statuses)].join(',')}`);
    assert.ok(took >= 3 * LOCK_TTL_S * 1000, `the requests waited for the slow login (${took} ms)`);
    await fleet.couch.settle();
    assert.equal(fleet.couch.logins(), 2, 'the lock was renewed: no second node logged in while the first was still at it');
    assert.equal(fleet.couch.loginAttempts(), 2, 'no other login was even tried');
    await Promise.all(fleet.nodes.map((n) => n.stack.nginx.waitForGeneration(2, 5000)));
  });
});

describe('a fleet whose nginx -t takes longer than the include watcher waits', { skip, timeout: 120_000 }, () => {
  let redis: RedisServer;
  let fleet: TestFleet;

  before(async () => {
    redis = await startRedis();
    fleet = await startFleet(3, redis, {}, undefined, { nginxTestDelayMs: 400 });
  });
  after(async () => {
    await fleet?.stop();
    await redis?.remove();
  });

  test('a node installing another node\'s cookie does not take its own write for a hand edit: no extra refresh or reload', async () => {
    await Promise.all(fleet.nodes.map((n) => n.stack.nginx.waitForGeneration(1, 30_000)));
    await fleet.couch.rotateSecret();
    // Traffic on one node only: the others get the new cookie from its announcement, outside a pass of their own.
    const results = await Promise.all(Array.from({ length: 10 }, () => fleet.nodes[0]!.stack.get('/_config')));
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
    await Promise.all(fleet.nodes.map((n) => n.stack.nginx.waitForGeneration(2, 10_000)));
    await Promise.all(fleet.nodes.slice(1).map((n) => n.daemon.waitForMsg(/fleet: installed the generation published by another node/, 10_000)));
    // Absence can only be watched for a while: the watcher's debounce (100 ms) plus two of
    // these slow nginx -t is where a refresh it started would show.
    await delay(1500);
    for (const node of fleet.nodes) {
      const admin = `http://${(node.stack.config.daemon as { admin_listen: string }).admin_listen}`;
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      assert.doesNotMatch(metrics, /session_refresher_refreshes_total\{session="couch",trigger="watch"\} [1-9]/, `${node.id} refreshed because of its own install`);
    }
    await fleet.couch.settle();
    assert.equal(fleet.couch.logins(), 2);
  });
});
