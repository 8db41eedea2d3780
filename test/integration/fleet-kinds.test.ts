/**
 * A fleet shares a token as it shares a cookie: three nodes (three nginx, three daemons) with a
 * cloudant-iam session (Bearer) on one real redis-server make one token request in all at
 * start and serve one token, and a revocation under 90 requests over the three nginx costs one
 * more token request for the whole fleet, every request answered 200. IAM and the Cloudant
 * account are scripted (modelled on IBM's documented answers: neither can run here).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { Daemon } from '../helpers/daemon.js';
import { startKindStack, type KindStack } from '../helpers/kind-stack.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../helpers/redis.js';
import { startScriptedIam, type ScriptedIam } from '../helpers/scripted-iam.js';

const skip = skipWithoutRedis() || skipWithoutNginx();
const API_KEY = 'fleet-kinds-api-key-0123456789';

describe('a fleet of three nodes sharing a cloudant-iam token', { skip, timeout: 120_000 }, () => {
  let redis: RedisServer;
  let iam: ScriptedIam;
  const stacks: KindStack[] = [];
  const daemons: Daemon[] = [];

  /** The token each node's include holds. */
  const tokens = () => Promise.all(stacks.map(async (s) => /set \$auth_authorization "([^"]*)";/.exec(await readFile(s.include, 'utf8'))?.[1]));

  before(async () => {
    redis = await startRedis();
    iam = await startScriptedIam({ apiKey: API_KEY });
    for (let i = 0; i < 3; i++) {
      const stack = await startKindStack({ url: iam.accountUrl, kind: { kind: 'cloudant-iam', iam_url: iam.tokenUrl }, variable: 'auth_authorization', secret: { key: 'api_key_file', value: API_KEY } });
      stack.config.cluster = { url: redis.url, key_prefix: 'fleet-kinds', node_id: `node-${i}`, poll_interval: 0.5, lock_ttl: 2, wait_timeout: 5 };
      stack.config.daemon = { ...(stack.config.daemon as object), min_refresh_interval: 0.05 };
      await stack.writeConfig();
      stacks.push(stack);
    }
    daemons.push(...(await Promise.all(stacks.map((s) => s.daemon()))));
  });
  after(async () => {
    await Promise.allSettled(stacks.map((s) => s.stop()));
    await iam?.stop();
    await redis?.remove();
  });

  test('one token request in all at start; every node serves the same token and generation', async () => {
    await Promise.all(stacks.map((s) => s.nginx.waitForGeneration(1, 20_000)));
    assert.equal(iam.tokensIssued(), 1, 'one token for the fleet');
    const held = await tokens();
    assert.ok(held[0]?.startsWith('Bearer '));
    assert.equal(new Set(held).size, 1, 'one token on every node');
  });

  test('every token revoked under 90 requests over the three nginx: all 200, one more token request', async () => {
    iam.invalidateAll();
    const results = await Promise.all(Array.from({ length: 90 }, (_, i) => stacks[i % 3]!.request(`/db/doc${i}`)));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 90, `statuses ${[...new Set(statuses)].join(',')}: ${results.find((r) => r.status !== 200)?.body ?? ''}`);
    await Promise.all(stacks.map((s) => s.nginx.waitForGeneration(2, 5000)));
    assert.equal(iam.tokensIssued(), 2, 'one token for the fleet\'s whole storm');
    assert.equal(new Set(await tokens()).size, 1, 'one token on every node again');
  });

  test('no daemon logs the token or the API key', async () => {
    const held = (await tokens())[0]!.slice('Bearer '.length);
    for (const daemon of daemons) for (const line of daemon.log.lines) {
      assert.ok(!line.includes(held), 'a daemon logged the token');
      assert.ok(!line.includes(API_KEY), 'a daemon logged the API key');
    }
  });
});
