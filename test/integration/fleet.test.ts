/**
 * A fleet of five nodes (five nginx, five daemons) on one backend sharing one session through
 * a real redis-server: one login in total at start, every nginx on the same generation within
 * a second, and a backend secret rotation under 200 concurrent requests spread over the five
 * nginx costing exactly one more login with every request answered 200.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../helpers/redis.js';

const skip = skipWithoutRedis() || skipWithoutNginx();

describe('a fleet of five nodes on Redis', { skip, timeout: 120_000 }, () => {
  let redis: RedisServer;
  let fleet: TestFleet;

  before(async () => {
    redis = await startRedis();
    fleet = await startFleet(5, redis);
  });
  after(async () => {
    await fleet?.stop();
    await redis?.remove();
  });

  test('starts with one login in total, and every node serves its generation within a second of the first', async () => {
    const first = await Promise.race(fleet.nodes.map((n, i) => n.stack.nginx.waitForGeneration(1, 20_000).then(() => i)));
    const firstAt = Date.now();
    await Promise.all(fleet.nodes.map((n) => n.stack.nginx.waitForGeneration(1, 20_000)));
    assert.ok(Date.now() - firstAt <= 1000, `node ${first} served generation 1 ${Date.now() - firstAt} ms before the last node did`);
    await fleet.couch.settle();
    assert.equal(fleet.couch.logins(), 1);
    assert.deepEqual(await fleet.generations(), ['1', '1', '1', '1', '1']);
  });

  test('a backend secret rotation under 200 concurrent requests over the five nginx: every request 200, exactly one more login', async () => {
    await fleet.couch.rotateSecret();
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => fleet.nodes[i % 5]!.stack.get('/_config')));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 200, `statuses: ${[...new Set(statuses)].join(',')}`);
    await fleet.couch.settle();
    assert.equal(fleet.couch.logins(), 2, 'one login at start, one for the whole fleet\'s storm');
    await Promise.all(fleet.nodes.map((n) => n.stack.nginx.waitForGeneration(2, 5000)));
  });

  test('/healthz and /metrics show the cluster: connected, the leader of the last rotation, no lag', async () => {
    const admin = (n: (typeof fleet.nodes)[number]) => `http://${(n.stack.config.daemon as { admin_listen: string }).admin_listen}`;
    const leaders = new Set<string | null>();
    for (const node of fleet.nodes) {
      const health = (await (await fetch(`${admin(node)}/healthz`)).json()) as { sessions: { cluster: { connected: boolean; leader: string | null; store_generation: number; lag: number } | null }[] };
      const cluster = health.sessions[0]?.cluster;
      assert.equal(cluster?.connected, true);
      assert.equal(cluster?.lag, 0);
      assert.ok((cluster?.store_generation ?? 0) >= 2);
      leaders.add(cluster?.leader ?? null);
      const metrics = await (await fetch(`${admin(node)}/metrics`)).text();
      assert.match(metrics, /session_refresher_cluster_connected\{session="couch"\} 1/);
      assert.match(metrics, /session_refresher_cluster_generation_lag\{session="couch"\} 0/);
      assert.match(metrics, /session_refresher_cluster_leader_info\{session="couch",leader="node-\d"\} 1/);
    }
    assert.equal(leaders.size, 1, `nodes disagree on the leader: ${[...leaders].join(', ')}`);
    assert.match([...leaders][0] ?? '', /^node-\d$/);
  });

  test('status and check show what the store holds: its generation, the leader, no lag', async () => {
    const node = fleet.nodes[0]!;
    const status = await node.stack.cli(['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const cluster = (JSON.parse(status.stdout) as { sessions: { generation: number; cluster: { connected: boolean; store_generation: number; leader: string; lag: number } }[] }).sessions[0];
    assert.equal(cluster?.cluster.connected, true);
    assert.equal(cluster?.cluster.store_generation, cluster?.generation, 'this node serves what the store holds');
    assert.equal(cluster?.cluster.lag, 0);
    assert.match(cluster?.cluster.leader ?? '', /^node-\d$/);
    const human = await node.stack.cli(['status']);
    assert.match(human.stdout, /fleet store: generation \d+ from node-\d, in step/);
    const check = await node.stack.cli(['check']);
    assert.match(check.stdout, /^ok {2}cluster store: redis at 127\.0\.0\.1:\d+: connected; couch generation \d+ from node-\d$/m);
  });

  test('no daemon logs a cookie', () => {
    for (const node of fleet.nodes) for (const line of node.daemon.log.lines) assert.doesNotMatch(line, /AuthSession=/, `${node.id} logged a cookie`);
  });
});
