/**
 * A fleet on Redis Sentinel: a primary, a replica and three sentinels (real redis-server
 * processes), three nodes (nginx + daemon) that find the primary through the sentinels. They
 * share one login as on a single Redis; a failover forced in the middle of a backend secret
 * rotation loses no request, costs at most one extra login (the replica may not have the lock
 * yet: Redis replication is asynchronous, which is why the generation, not the lock, is what
 * keeps the fleet correct), and the fleet ends on one generation; the next rotation, on the
 * new primary, is one login again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { skipWithoutRedis } from '../helpers/redis.js';
import { SENTINEL_NAME, startSentinelDeployment, type SentinelDeployment } from '../helpers/redis-sentinel.js';

const skip = skipWithoutRedis() || skipWithoutNginx();

/** Polls until every node serves the same generation, at least `atLeast`. */
async function converged(fleet: TestFleet, atLeast: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const generations = await fleet.generations().catch(() => [] as string[]);
    if (generations.length > 0 && new Set(generations).size === 1 && Number(generations[0]) >= atLeast) return Number(generations[0]);
    if (Date.now() > deadline) assert.fail(`no convergence within ${timeoutMs} ms: generations ${generations.join(', ')}`);
    await delay(50);
  }
}

describe('a fleet of three nodes on Redis Sentinel', { skip, timeout: 180_000 }, () => {
  let deployment: SentinelDeployment;
  let fleet: TestFleet;

  before(async () => {
    deployment = await startSentinelDeployment();
    fleet = await startFleet(3, { url: '' }, { url: undefined, sentinel: { name: SENTINEL_NAME, nodes: deployment.sentinels }, key_prefix: 'fleet-sentinel' });
  });
  after(async () => {
    await fleet?.stop();
    await deployment?.stop();
  });

  test('one login in all at start, found through the sentinels', async () => {
    await converged(fleet, 1, 20_000);
    await fleet.couch.settle();
    assert.equal(fleet.couch.logins(), 1);
    const status = await fleet.nodes[0]!.stack.cli(['status', '--json']);
    const cluster = (JSON.parse(status.stdout) as { sessions: { cluster: { connected: boolean; store_generation: number } }[] }).sessions[0]?.cluster;
    assert.equal(cluster?.connected, true, status.stdout);
    assert.equal(cluster?.store_generation, 1);
  });

  test('a failover forced during a secret rotation under 60 requests: every request 200, at most one extra login, one generation after', async () => {
    const start = await converged(fleet, 1, 5000);
    await fleet.couch.settle();
    const logins = fleet.couch.logins();
    const primary = await deployment.primaryPort();
    await fleet.couch.rotateSecret();
    const [results, newPrimary] = await Promise.all([Promise.all(Array.from({ length: 60 }, (_, i) => fleet.nodes[i % 3]!.stack.get('/_config'))), deployment.failover()]);
    assert.notEqual(newPrimary, primary, 'the sentinels moved the primary');
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 60, `statuses: ${[...new Set(statuses)].join(',')}`);
    await fleet.couch.settle();
    assert.ok(fleet.couch.logins() - logins >= 1 && fleet.couch.logins() - logins <= 2, `${fleet.couch.logins() - logins} logins for the rotation`);
    await converged(fleet, start + 1, 20_000);
  });

  test('the next rotation, on the new primary: one login for the fleet', async () => {
    const start = await converged(fleet, 2, 20_000);
    // Every node's store must have found the new primary first: a node whose store is still
    // reconnecting logs in alone for a dead cookie, by design (see fleet-faults).
    for (const node of fleet.nodes) {
      const admin = `http://${(node.stack.config.daemon as { admin_listen: string }).admin_listen}/healthz`;
      const deadline = Date.now() + 20_000;
      for (;;) {
        const health = (await (await fetch(admin)).json()) as { sessions: { cluster: { connected: boolean } | null }[] };
        if (health.sessions[0]?.cluster?.connected) break;
        if (Date.now() > deadline) assert.fail(`${node.id}: the store did not reconnect after the failover`);
        await delay(50);
      }
    }
    await fleet.couch.settle();
    const logins = fleet.couch.logins();
    await fleet.couch.rotateSecret();
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => fleet.nodes[i % 3]!.stack.get('/_config')));
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
    await fleet.couch.settle();
    assert.equal(fleet.couch.logins() - logins, 1);
    await converged(fleet, start + 1, 10_000);
  });
});
