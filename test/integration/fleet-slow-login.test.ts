/**
 * A login that outlives the fleet's lock three times over: the node holding the lock keeps
 * renewing it, so no other node takes it and logs in too. Three nodes on one real
 * pouchdb-server and one real redis-server; the logins are held by an instrument in front of
 * the backend (test/helpers/slow-login.ts), every answer is the backend's own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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
