/**
 * The fleet store's contract, on a real redis-server: the login lock is exclusive, renewed past
 * its TTL while held, and released only by its holder; a publish never replaces a generation
 * with a lower or equal one; accepted generations are announced on the channel; and while Redis
 * is down every command fails at once (nothing queued), and all works again when it returns.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ClusterUnavailableError } from '../../src/errors.js';
import { createRedisStore } from '../../src/fleet/redis.js';
import { sessionKeys } from '../../src/fleet/keys.js';
import type { FleetRecord, FleetStore } from '../../src/fleet/store.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../helpers/redis.js';

const skip = skipWithoutRedis();

function record(generation: number, issuedBy = 'node-a'): FleetRecord {
  const now = Date.now();
  return { generation, cookie: `AuthSession=cookie-${generation}`, expiresAt: now + 600_000, issuedAt: now, issuedBy, at: now };
}

/** Resolves when `store` reports `connected` (at once if it already is). */
function connection(store: FleetStore, connected: boolean): Promise<void> {
  if (store.connected === connected) return Promise.resolve();
  return new Promise((resolve) => {
    const off = store.onConnection((now) => {
      if (now !== connected) return;
      off();
      resolve();
    });
  });
}

describe('the Redis fleet store', { skip, timeout: 90_000 }, () => {
  let redis: RedisServer;
  const stores: FleetStore[] = [];
  let sessionCounter = 0;
  /** A session name of its own per test, so tests do not see each other's keys. */
  const session = () => `couch-${++sessionCounter}`;
  const open = async (options: { password?: string; server?: RedisServer } = {}): Promise<FleetStore> => {
    const store = createRedisStore({ url: (options.server ?? redis).url, password: options.password, keyPrefix: 'test', commandTimeoutMs: 500, maxReconnectDelayMs: 100 });
    stores.push(store);
    if (!options.password || options.password !== 'wrong') await connection(store, true);
    return store;
  };

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await redis?.remove();
  });

  it('reads nothing before the first publish, and the published record after it', async () => {
    const store = await open();
    const name = session();
    assert.equal(await store.read(name), undefined);
    const published = record(1);
    assert.deepEqual(await store.publish(name, published), { accepted: true, current: 1 });
    assert.deepEqual(await store.read(name), published);
  });

  it('refuses a publish whose generation is not higher than the stored one, and keeps the stored record', async () => {
    const store = await open();
    const name = session();
    await store.publish(name, record(5, 'node-a'));
    assert.deepEqual(await store.publish(name, record(4, 'node-b')), { accepted: false, current: 5 });
    assert.deepEqual(await store.publish(name, record(5, 'node-b')), { accepted: false, current: 5 });
    const stored = await store.read(name);
    assert.equal(stored?.generation, 5);
    assert.equal(stored?.issuedBy, 'node-a');
    assert.deepEqual(await store.publish(name, record(6, 'node-b')), { accepted: true, current: 6 });
  });

  it('gives the login lock to one holder at a time, and to the next once released', async () => {
    const [a, b] = [await open(), await open()];
    const name = session();
    const lockA = await a.acquire(name, 5000);
    assert.ok(lockA);
    assert.equal(await b.acquire(name, 5000), undefined);
    assert.equal(await a.acquire(name, 5000), undefined, 'the lock is not reentrant: a second login on the same node must wait too');
    await lockA.release();
    const lockB = await b.acquire(name, 5000);
    assert.ok(lockB);
    assert.notEqual(lockB.token, lockA.token);
    await lockB.release();
  });

  it('keeps a held lock past three times its TTL by renewing it', async () => {
    const [a, b] = [await open(), await open()];
    const name = session();
    const ttl = 1000;
    const lock = await a.acquire(name, ttl);
    assert.ok(lock);
    await delay(ttl * 3 + 300);
    assert.equal(lock.lost, false);
    assert.equal(await b.acquire(name, ttl), undefined, 'another node took a lock that was still being renewed');
    const pttl = Number(await redis.command(['PTTL', sessionKeys('test', name).lock]));
    assert.ok(pttl > 0 && pttl <= ttl, `the lock's TTL stays bounded by its TTL (got ${pttl} ms)`);
    await lock.release();
    assert.ok(await b.acquire(name, ttl));
  });

  it('releases by compare-and-delete: a holder whose lock expired cannot delete the next holder\'s', async () => {
    const [a, b, c] = [await open(), await open(), await open()];
    const name = session();
    const lockA = await a.acquire(name, 5000);
    assert.ok(lockA);
    // As if A's TTL ran out while it was paused: the key goes, and B takes the lock.
    await redis.command(['DEL', sessionKeys('test', name).lock]);
    const lockB = await b.acquire(name, 5000);
    assert.ok(lockB);
    await lockA.release();
    assert.equal(await redis.command(['GET', sessionKeys('test', name).lock]), lockB.token);
    assert.equal(await c.acquire(name, 5000), undefined);
    await lockB.release();
  });

  it('marks a lock lost when a renewal finds another holder\'s token', async () => {
    const a = await open();
    const name = session();
    const lock = await a.acquire(name, 300);
    assert.ok(lock);
    await redis.command(['SET', sessionKeys('test', name).lock, 'someone-else', 'PX', '5000']);
    await delay(300);
    assert.equal(lock.lost, true);
    await lock.release();
    assert.equal(await redis.command(['GET', sessionKeys('test', name).lock]), 'someone-else');
  });

  it('announces each accepted generation on the channel, and not a refused one', async () => {
    const [a, b] = [await open(), await open()];
    const name = session();
    const heard: number[] = [];
    let announced: (g: number) => void = () => undefined;
    await b.subscribe(name, (g) => {
      heard.push(g);
      announced(g);
    });
    const seven = new Promise<number>((resolve) => (announced = resolve));
    await a.publish(name, record(7));
    assert.equal(await seven, 7);
    await a.publish(name, record(3));
    const nine = new Promise<number>((resolve) => (announced = resolve));
    await a.publish(name, record(9));
    assert.equal(await nine, 9);
    assert.deepEqual(heard, [7, 9]);
  });

  it('fails every command at once while Redis is down, and works again (subscriptions too) once it is back', async () => {
    const server = await startRedis();
    try {
      const [a, b] = [await open({ server }), await open({ server })];
      const name = session();
      await a.publish(name, record(1));
      await server.stop();
      await connection(a, false);
      for (const attempt of [() => a.read(name), () => a.acquire(name, 1000), () => a.publish(name, record(2))]) {
        const startedAt = Date.now();
        await assert.rejects(attempt(), (error: unknown) => error instanceof ClusterUnavailableError && error.code === 'ERR_CLUSTER_UNAVAILABLE' && /^redis at 127\.0\.0\.1:\d+: cannot \w+/.test(error.message));
        assert.ok(Date.now() - startedAt < 200, `a command waited ${Date.now() - startedAt} ms for a Redis that is down`);
      }
      let announced: (g: number) => void = () => undefined;
      const heard = new Promise<number>((resolve) => (announced = resolve));
      await b.subscribe(name, (g) => announced(g));
      await server.start();
      await Promise.all([connection(a, true), connection(b, true)]);
      // Redis kept nothing (no persistence): the store starts empty again.
      assert.equal(await a.read(name), undefined);
      // The subscriber reconnects on its own; publish until it hears (its resubscription may land just after).
      let generation = 10;
      const published = (async () => {
        while (!(await Promise.race([heard.then(() => true), delay(50).then(() => false)]))) await a.publish(name, record(++generation));
      })();
      assert.ok((await heard) >= 11);
      await published;
    } finally {
      await server.remove();
    }
  });

  it('authenticates with the password and never puts it in an error', async () => {
    const password = 'fleet-secret-7f3a';
    const server = await startRedis({ password });
    try {
      const good = await open({ server, password });
      const name = session();
      assert.equal((await good.publish(name, record(1))).accepted, true);
      const bad = await open({ server, password: 'wrong' });
      await delay(200);
      assert.equal(bad.connected, false);
      await assert.rejects(bad.read(name), (error: unknown) => error instanceof ClusterUnavailableError && !error.message.includes(password) && !error.message.includes('wrong'));
    } finally {
      await server.remove();
    }
  });
});
