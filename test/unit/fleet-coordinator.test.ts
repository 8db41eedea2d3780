/**
 * The fleet coordinator's decisions over an in-process store (the Redis store passes the same
 * contract in integration/fleet-store.test.ts): one login per rotation however many nodes ask,
 * a higher generation adopted instead of a login, a renewed lock outliving a slow login, a
 * refused late publish yielding to the store's cookie, and a store outage: no login while the
 * cookie is valid, one lone login per node when it is not, reconciliation when it returns.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ClusterUnavailableError } from '../../src/errors.js';
import { FleetCoordinator, type LoginAt } from '../../src/fleet/coordinator.js';
import { MemoryStore } from '../../src/fleet/memory.js';
import type { FleetRecord } from '../../src/fleet/store.js';
import { silentLogger } from '../../src/log.js';

const HOUR = 3_600_000;

/** A node as the coordinator sees it: what it serves, and every generation it ever served. */
class FakeNode {
  generation = 0;
  cookie: string | undefined;
  expiresAt: number | undefined;
  history: number[] = [];
  logins = 0;
  constructor(readonly id: string) {}
  async served() {
    return { generation: this.generation, expiresAt: this.expiresAt };
  }
  async apply(record: FleetRecord) {
    this.serve(record.generation, record.cookie, record.expiresAt);
  }
  serve(generation: number, cookie: string, expiresAt: number) {
    this.generation = generation;
    this.cookie = cookie;
    this.expiresAt = expiresAt;
    this.history.push(generation);
  }
  /** A login that takes `ms` and serves its cookie at the generation asked for. */
  loginAt(ms = 0): LoginAt {
    return async (generation) => {
      this.logins++;
      if (ms) await delay(ms);
      const now = Date.now();
      const record: FleetRecord = { generation, cookie: `AuthSession=${this.id}-${this.logins}`, expiresAt: now + HOUR, issuedAt: now, issuedBy: this.id, at: now };
      this.serve(generation, record.cookie, record.expiresAt);
      return record;
    };
  }
}

function fleet(store: MemoryStore, count: number, overrides: { lockTtlMs?: number; waitTimeoutMs?: number } = {}) {
  return Array.from({ length: count }, (_, i) => {
    const node = new FakeNode(`node-${i}`);
    const coordinator = new FleetCoordinator({ store, session: 'couch', nodeId: node.id, node, lockTtlMs: overrides.lockTtlMs ?? 1000, pollIntervalMs: 100, waitTimeoutMs: overrides.waitTimeoutMs ?? 3000, loneLoginIntervalMs: 60_000, log: silentLogger });
    return { node, coordinator };
  });
}

const totalLogins = (nodes: { node: FakeNode }[]) => nodes.reduce((sum, n) => sum + n.node.logins, 0);
const neverDown = (history: number[]) => history.every((g, i) => i === 0 || g >= history[i - 1]!);

describe('FleetCoordinator', () => {
  it('makes five nodes asking at once cost one login, and all serve its generation', async () => {
    const store = new MemoryStore();
    const nodes = fleet(store, 5);
    const results = await Promise.all(nodes.map(({ node, coordinator }) => coordinator.login(0, true, node.loginAt(20))));
    assert.equal(totalLogins(nodes), 1);
    assert.deepEqual(results.sort(), ['adopted', 'adopted', 'adopted', 'adopted', 'logged-in']);
    assert.deepEqual(new Set(nodes.map(({ node }) => `${node.generation} ${node.cookie}`)).size, 1);
    assert.equal(nodes[0]!.node.generation, 1);
    nodes.forEach(({ coordinator }) => coordinator.stop());
    await store.close();
  });

  it('adopts a higher generation from the store instead of logging in, and never applies a lower or equal one', async () => {
    const store = new MemoryStore();
    const [a, b] = fleet(store, 2);
    await a!.coordinator.login(0, true, a!.node.loginAt());
    b!.node.serve(1, 'AuthSession=b-own', Date.now() + HOUR);
    await b!.coordinator.sync();
    assert.equal(b!.node.cookie, 'AuthSession=b-own', 'an equal generation replaced what the node serves');
    await a!.coordinator.login(1, true, a!.node.loginAt());
    await b!.coordinator.sync();
    assert.equal(b!.node.generation, 2);
    assert.equal(b!.node.cookie, a!.node.cookie);
    assert.equal(b!.node.logins, 0);
    assert.deepEqual(b!.coordinator.status(), { connected: true, leader: 'node-0', storeGeneration: 2, lag: 0 });
    await store.close();
  });

  it('keeps one login when the login takes three times the lock TTL (the lock is renewed)', async () => {
    const store = new MemoryStore();
    const nodes = fleet(store, 3, { lockTtlMs: 150, waitTimeoutMs: 2000 });
    await Promise.all(nodes.map(({ node, coordinator }, i) => coordinator.login(0, true, node.loginAt(i === 0 ? 450 : 0))));
    assert.equal(totalLogins(nodes), 1);
    assert.equal(new Set(nodes.map(({ node }) => node.cookie)).size, 1);
    await store.close();
  });

  it('yields when its late publish is refused: it serves the store\'s cookie, and no generation goes down', async () => {
    const store = new MemoryStore();
    const [late, fast] = fleet(store, 2);
    // `late` logs in at generation 1 and, while it is (as if) paused, another node publishes 1 and 2.
    const slowLogin: LoginAt = async (generation) => {
      const record = await late!.node.loginAt()(generation);
      const now = Date.now();
      await store.publish('couch', { generation: 1, cookie: 'AuthSession=other-1', expiresAt: now + HOUR, issuedAt: now, issuedBy: 'other', at: now });
      await store.publish('couch', { generation: 2, cookie: 'AuthSession=other-2', expiresAt: now + HOUR, issuedAt: now, issuedBy: 'other', at: now });
      return record;
    };
    assert.equal(await late!.coordinator.login(0, true, slowLogin), 'logged-in');
    assert.equal((await store.read('couch'))?.cookie, 'AuthSession=other-2');
    assert.equal(late!.node.cookie, 'AuthSession=other-2');
    assert.ok(neverDown(late!.node.history), `generations served: ${late!.node.history.join(', ')}`);
    await fast!.coordinator.sync();
    assert.equal(fast!.node.generation, 2);
    await store.close();
  });

  it('while the store is down: no login for a valid cookie, one lone login per node for a refused one, then one fleet generation once it is back', async () => {
    const store = new MemoryStore();
    const nodes = fleet(store, 3);
    await Promise.all(nodes.map(({ node, coordinator }) => coordinator.login(0, true, node.loginAt())));
    assert.equal(totalLogins(nodes), 1);
    await Promise.all(nodes.map(({ coordinator }) => coordinator.start()));
    store.setDown(true);
    for (const { node, coordinator } of nodes) await assert.rejects(coordinator.login(1, false, node.loginAt()), ClusterUnavailableError);
    assert.equal(totalLogins(nodes), 1, 'a node logged in while its cookie was valid and the store was down');
    // The backend rotated its secret: every node's cookie is refused, twice over.
    for (const { node, coordinator } of nodes) assert.equal(await coordinator.login(1, true, node.loginAt()), 'alone');
    for (const { node, coordinator } of nodes) await assert.rejects(coordinator.login(2, true, node.loginAt()), ClusterUnavailableError);
    assert.equal(totalLogins(nodes), 4, 'more than one lone login per node');
    store.setDown(false);
    await Promise.all(nodes.map(({ coordinator }) => coordinator.sync()));
    await Promise.all(nodes.map(({ coordinator }) => coordinator.sync()));
    const stored = await store.read('couch');
    assert.equal(stored?.generation, 2);
    for (const { node } of nodes) {
      assert.equal(node.cookie, stored?.cookie);
      assert.ok(neverDown(node.history), `generations served: ${node.history.join(', ')}`);
    }
    nodes.forEach(({ coordinator }) => coordinator.stop());
    await store.close();
  });
});
