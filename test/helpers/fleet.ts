/**
 * A fleet for integration tests: N nodes (each its own nginx + daemon, from startStack) on one
 * backend, sharing one real redis-server through `cluster:`.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCouch, type Couch } from './couch.js';
import { startDaemon, type Daemon } from './daemon.js';
import type { RedisServer } from './redis.js';
import { startStack, type Stack } from './stack.js';

export interface FleetNodeHandle {
  id: string;
  stack: Stack;
  daemon: Daemon;
}

export interface TestFleet {
  couch: Couch;
  nodes: FleetNodeHandle[];
  /** The generation each node's nginx serves now. */
  generations(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Starts `count` nodes at once on one backend and `redis`, and waits for every daemon's
 * "ready". `through` puts something between the nodes and the backend (given the backend's URL,
 * it returns the URL the nodes use).
 */
export async function startFleet(
  count: number,
  redis: Pick<RedisServer, 'url'>,
  cluster: Record<string, unknown> = {},
  through?: (backend: string) => Promise<string>,
  options: { nginxTestDelayMs?: number } = {},
): Promise<TestFleet> {
  const couch = await startCouch();
  const url = through ? await through(couch.url) : undefined;
  const stacks: Stack[] = [];
  const nodes: FleetNodeHandle[] = [];
  const stop = async () => {
    await Promise.allSettled(nodes.map((n) => n.daemon.stop()));
    await Promise.allSettled(stacks.map((s) => s.stop()));
    await couch.stop();
  };
  try {
    for (let i = 0; i < count; i++) {
      const stack = await startStack({ fallback: true, couch, ...(url ? { url } : {}) });
      stack.config.cluster = { url: redis.url, key_prefix: 'fleet-test', node_id: `node-${i}`, poll_interval: 0.5, lock_ttl: 2, wait_timeout: 5, ...cluster };
      stack.config.daemon = { ...(stack.config.daemon as object), min_refresh_interval: 0.05 };
      if (options.nginxTestDelayMs) {
        // `nginx -t` as slow as on a large configuration: a wrapper that waits, then runs nginx.
        const wrapper = join(stack.dir, 'slow-nginx-t');
        const real = (stack.config.nginx as { binary: string }).binary;
        await writeFile(wrapper, `#!/bin/sh\ncase " $* " in *" -t "*) sleep ${options.nginxTestDelayMs / 1000};; esac\nexec ${real} "$@"\n`, { mode: 0o755 });
        stack.config.nginx = { ...(stack.config.nginx as object), binary: wrapper };
      }
      await stack.writeConfig();
      stacks.push(stack);
    }
    const daemons = await Promise.all(stacks.map((s) => startDaemon(s.configPath)));
    daemons.forEach((daemon, i) => nodes.push({ id: `node-${i}`, stack: stacks[i]!, daemon }));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    couch,
    nodes,
    generations: () => Promise.all(nodes.map((n) => n.stack.nginx.generation())),
    stop,
  };
}
