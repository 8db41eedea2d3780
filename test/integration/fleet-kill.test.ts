/**
 * A fleet (three nodes, a real redis-server) when the node logging in for it dies or stalls:
 * SIGKILLed between its login and its publish, the others take over once its lock expires (one
 * more login at most); SIGSTOPped past the lock's TTL and then continued, its late publish is
 * refused, it ends on the fleet's cookie, and no node's generation ever goes down.
 */
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../helpers/redis.js';

const skip = skipWithoutRedis() || skipWithoutNginx();
const LOCK_TTL_SECONDS = 2;
const POLL_SECONDS = 0.5;

/** Resolves with the index of the first node that logs "logging in" after `marks`. */
function firstLogin(fleet: TestFleet, marks: number[]): Promise<number> {
  return Promise.race(fleet.nodes.map((n, i) => n.daemon.waitForMsgAfter(marks[i]!, /logging in/, 20_000).then(() => i)));
}

/** The generations each node wrote or installed, in order, from its log. */
function writtenGenerations(fleet: TestFleet, index: number): number[] {
  return fleet.nodes[index]!.daemon
    .events()
    .filter((e) => /include written|installed the generation/.test(String(e.msg)))
    .map((e) => Number(e.generation));
}

describe('a fleet when its login node dies or stalls', { skip, timeout: 120_000 }, () => {
  let redis: RedisServer;
  let fleet: TestFleet;

  beforeEach(async () => {
    redis ??= await startRedis();
    await redis.command(['FLUSHALL']);
    fleet = await startFleet(3, redis, { lock_ttl: LOCK_TTL_SECONDS, poll_interval: POLL_SECONDS, wait_timeout: 10 });
    await Promise.all(fleet.nodes.map((n) => n.stack.nginx.waitForGeneration(1, 20_000)));
    await fleet.couch.settle();
  });
  afterEach(async () => {
    for (const n of fleet.nodes) if (n.daemon.child.signalCode === null && n.daemon.child.exitCode === null) n.daemon.child.kill('SIGCONT');
    await fleet.stop();
  });
  after(async () => {
    await redis?.remove();
  });

  test('SIGKILLed between its login and its publish: the others take over within the lock TTL plus a poll, at most two logins', async () => {
    const loginsBefore = fleet.couch.logins();
    const marks = fleet.nodes.map((n) => n.daemon.mark());
    await fleet.couch.rotateSecret();
    const request = fleet.nodes[0]!.stack.get('/_config').catch(() => undefined);
    const victim = await firstLogin(fleet, marks);
    fleet.nodes[victim]!.daemon.child.kill('SIGKILL');
    await request;
    const survivors = fleet.nodes.filter((_, i) => i !== victim);
    const startedAt = Date.now();
    const statuses = await Promise.all(survivors.map((n) => n.stack.get('/_config').then((r) => r.status)));
    assert.deepEqual(statuses, survivors.map(() => 200));
    assert.ok(Date.now() - startedAt <= (LOCK_TTL_SECONDS + POLL_SECONDS) * 1000 + 2000, `survivors waited ${Date.now() - startedAt} ms`);
    await Promise.all(survivors.map((n) => n.stack.nginx.waitForGeneration(2, 5000, { atLeast: true })));
    const generations = new Set(await Promise.all(survivors.map((n) => n.stack.nginx.generation())));
    assert.equal(generations.size, 1, `survivors serve ${[...generations].join(', ')}`);
    await fleet.couch.settle();
    assert.ok(fleet.couch.logins() - loginsBefore <= 2, `${fleet.couch.logins() - loginsBefore} logins`);
  });

  test('SIGSTOPped past the lock TTL and continued: its late publish is refused, it serves the fleet\'s cookie, no generation goes down', async () => {
    const loginsBefore = fleet.couch.logins();
    const marks = fleet.nodes.map((n) => n.daemon.mark());
    await fleet.couch.rotateSecret();
    const request = fleet.nodes[0]!.stack.get('/_config').catch(() => undefined);
    const stalled = await firstLogin(fleet, marks);
    fleet.nodes[stalled]!.daemon.child.kill('SIGSTOP');
    const others = fleet.nodes.filter((_, i) => i !== stalled);
    assert.deepEqual(await Promise.all(others.map((n) => n.stack.get('/_config').then((r) => r.status))), others.map(() => 200));
    const record = (await redis.command(['HGETALL', '{fleet-test:couch}:current'])) as Record<string, string> | string[];
    const fields = Array.isArray(record) ? Object.fromEntries(record.flatMap((v, i, a) => (i % 2 ? [] : [[v, a[i + 1]]]))) : record;
    assert.notEqual(fields.issued_by, `node-${stalled}`);
    const published = Number(fields.generation);

    fleet.nodes[stalled]!.daemon.child.kill('SIGCONT');
    await fleet.nodes[stalled]!.daemon.waitForMsgAfter(marks[stalled]!, /fleet: the store already holds this generation or a newer one/, 10_000);
    await request;
    await Promise.all(fleet.nodes.map((n) => n.stack.nginx.waitForGeneration(published, 5000, { atLeast: true })));
    const includes = await Promise.all(fleet.nodes.map(async (n) => /^set \$auth_cookie "([^"]+)";$/m.exec((await n.stack.includeBytes()).toString('utf8'))?.[1]));
    assert.equal(new Set(includes).size, 1, 'the continued node kept its own cookie');
    for (let i = 0; i < fleet.nodes.length; i++) {
      const written = writtenGenerations(fleet, i);
      assert.ok(written.every((g, j) => j === 0 || g >= written[j - 1]!), `node-${i} wrote generations ${written.join(', ')}`);
    }
    await fleet.couch.settle();
    assert.ok(fleet.couch.logins() - loginsBefore <= 2, `${fleet.couch.logins() - loginsBefore} logins`);
  });
});
