/**
 * A fleet for the benchmark (figure 8): N nodes on one backend and one real redis-server, each
 * node its own bench nginx (lib/stack.ts: room for a storm) and its own daemon (run with the
 * shipped unit's V8 options), all with the same `cluster:` section but their own node_id. Like
 * test/helpers/fleet.ts, which starts the tests' smaller nginx and shorter cluster timers; the
 * bench keeps the cluster defaults (poll_interval 5 s, lock_ttl 10 s, wait_timeout 15 s), as a
 * fleet is deployed.
 *
 * Also the instruments figure 8 needs: Redis's own command counters, read on a connection of
 * its own, and a watcher that polls every node's loopback generation probe at once.
 */
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createClient } from '@redis/client';
import { stringify } from 'yaml';
import type { Couch } from '../../test/helpers/couch.js';
import { startDaemon, type Daemon } from '../../test/helpers/daemon.js';
import type { RedisServer } from '../../test/helpers/redis.js';
import { clockMs, timedGet, type Sample } from './client.js';
import { startBenchStack, type BenchStack } from './stack.js';
import { unitNodeOptions } from './unit.js';

export interface BenchFleetNode {
  id: string;
  stack: BenchStack;
  daemon: Daemon;
}

export interface BenchFleet {
  nodes: BenchFleetNode[];
  /** The `cluster:` section every node has (node_id aside). */
  cluster: Record<string, unknown>;
  /** The generation each node's nginx serves now. */
  generations(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Starts `count` nodes on `couch` and `redis` and waits for every daemon's "ready". Daemons are
 * started one after the other: ten Node processes starting at once on two shared cores can take
 * longer than the helper's 30 s "ready" deadline.
 */
export async function startBenchFleet(couch: Couch, redis: RedisServer, count: number, say: (t: string) => void): Promise<BenchFleet> {
  const cluster = { url: redis.url, key_prefix: 'bench-fleet' };
  const nodes: BenchFleetNode[] = [];
  const stacks: BenchStack[] = [];
  const stop = async () => {
    await Promise.allSettled(nodes.map((n) => n.daemon.stop()));
    await Promise.allSettled(stacks.map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < count; i++) {
      const stack = await startBenchStack(couch);
      stacks.push(stack);
      stack.config.cluster = { ...cluster, node_id: `node-${i}` };
      await writeFile(stack.configPath, stringify(stack.config));
    }
    const options = unitNodeOptions();
    for (let i = 0; i < count; i++) {
      const daemon = await startDaemon(stacks[i]!.configPath, { NODE_OPTIONS: options });
      nodes.push({ id: `node-${i}`, stack: stacks[i]!, daemon });
    }
    say(`  fig 8: ${count} nginx + ${count} daemons started`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, cluster, generations: () => Promise.all(nodes.map((n) => n.stack.nginx.generation())), stop };
}

/** Redis's per-command call counters (`INFO commandstats`), read on a connection of its own. */
export interface CommandCounter {
  /** Calls per command so far, without this counter's own INFO calls. */
  read(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** Parses `INFO commandstats` ("cmdstat_hgetall:calls=12,usec=..." lines) into calls per command. */
export function parseCommandStats(info: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const line of info.split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) calls[m[1]!] = Number(m[2]);
  }
  return calls;
}

export async function commandCounter(redis: RedisServer): Promise<CommandCounter> {
  const client = createClient({ url: redis.url });
  client.on('error', () => undefined);
  await client.connect();
  return {
    async read() {
      const calls = parseCommandStats(String(await client.sendCommand(['INFO', 'commandstats'])));
      delete calls.info;
      return calls;
    },
    close: () => client.close(),
  };
}

/** `after - before` per command (commands with no calls in between left out). */
export function commandDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) delta[k] = d;
  }
  return delta;
}

export const totalOf = (calls: Record<string, number>): number => Object.values(calls).reduce((a, b) => a + b, 0);

/**
 * Polls every node's generation probe (a new loopback connection each time, every `everyMs`)
 * until each has answered `generation` (or a later one), or `timeoutMs` passed. Resolves with, per node, the
 * ms (on the client clock, since `t0`) at which the first answer with that generation arrived,
 * or undefined for a node that never served it. The first answer counts: after a reload, nginx
 * may still hand a connection to an old worker for a moment, so this is when a node starts
 * serving the generation, not when its last old worker exited.
 */
export async function watchGenerations(urls: string[], generation: number, t0: number, options: { everyMs?: number; timeoutMs?: number } = {}): Promise<(number | undefined)[]> {
  const everyMs = options.everyMs ?? 10;
  const deadline = clockMs() + (options.timeoutMs ?? 15_000);
  return Promise.all(
    urls.map(async (url) => {
      while (clockMs() < deadline) {
        const served = await generationText(url).catch(() => undefined);
        // A later generation counts too (a second login would show in the login count).
        if (served !== undefined && /^\d+$/.test(served) && Number(served) >= generation) return clockMs() - t0;
        await new Promise((r) => setTimeout(r, everyMs));
      }
      return undefined;
    }),
  );
}

/** One answer of a generation probe, on a new loopback connection (bounded by 2 s). */
function generationText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' }, timeout: 2_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`generation probe answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('generation probe timed out')));
    req.on('error', reject);
  });
}

/** `count` GETs started at once, request i to urls[i % urls.length], each on its own connection. */
export async function spreadBurst(urls: string[], count: number, t0 = clockMs()): Promise<{ samples: Sample[]; wallMs: number }> {
  const started = clockMs();
  const samples = await Promise.all(Array.from({ length: count }, (_, i) => timedGet(urls[i % urls.length]!, { t0 })));
  return { samples, wallMs: clockMs() - started };
}
