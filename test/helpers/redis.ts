/**
 * A real redis-server (the Debian package) for tests: a free loopback port, its own temp dir,
 * no persistence. Started in the foreground; "ready" is its own log line, not a sleep. Under
 * CI=true a missing redis-server fails the test run instead of skipping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createClient } from '@redis/client';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

/** The redis-server binary, from $REDIS_SERVER_BIN or the usual Debian locations. */
export function redisBinary(): string | undefined {
  const candidates = [process.env.REDIS_SERVER_BIN, '/usr/bin/redis-server', '/usr/local/bin/redis-server'].filter((c): c is string => Boolean(c));
  return candidates.find((c) => existsSync(c));
}

/**
 * For `test(..., { skip })`: a reason to skip when redis-server is missing on a developer
 * machine. Under CI=true it is required, so this throws instead of skipping.
 */
export function skipWithoutRedis(): string | false {
  if (redisBinary()) return false;
  if (process.env.CI === 'true') throw new Error("redis-server is not installed, and under CI=true fleet tests may not skip: install Debian's redis-server (.ci/run does)");
  return 'redis-server is not installed (apt-get install redis-server); fleet test skipped';
}

/** A running (or stopped, restartable) redis-server. */
export interface RedisServer {
  port: number;
  url: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Runs one command on a short-lived admin connection (e.g. CLIENT KILL TYPE pubsub). */
  command(args: string[]): Promise<unknown>;
  /** Stops it and removes its directory. */
  remove(): Promise<void>;
}

/** Runs one command on a short-lived connection to the server (or sentinel) on `port`. */
export async function redisCommand(port: number, args: string[], password?: string): Promise<unknown> {
  const client = createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false }, ...(password ? { password } : {}) });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    await client.close();
  }
}

/** Starts redis-server; `password` sets requirepass. */
export async function startRedis(options: { password?: string } = {}): Promise<RedisServer> {
  const binary = redisBinary();
  if (!binary) throw new Error('redis-server is not installed');
  const dir = await tempDir('sr-redis-');
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    // The password goes through stdin as a config file, never argv (ps shows argv).
    const args = ['-', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path, '--loglevel', 'notice'];
    const proc = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    proc.stdin.end(options.password ? `requirepass "${options.password}"\n` : '');
    child = proc;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.includes('Ready to accept connections')) {
          proc.stdout.off('data', onData);
          resolve();
        }
      };
      proc.stdout.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${output.slice(-500)}`)));
    });
    proc.stdout.resume();
    proc.stderr.resume();
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    command: (args) => redisCommand(port, args, options.password),
    async remove() {
      await stop();
      await dir.remove();
    },
  };
}
