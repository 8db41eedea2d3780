/**
 * A real Redis Sentinel deployment for tests (Debian's redis-server, which is also the
 * sentinel: `redis-server <conf> --sentinel`): a primary, one replica and three sentinels on
 * free loopback ports, each in the foreground in its own temp dir. Ready means: the replica
 * is in sync and every sentinel knows the replica and the two other sentinels, so a forced
 * failover can run. Waits poll the servers' own answers, never sleep a fixed time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { redisBinary, redisCommand } from './redis.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

export const SENTINEL_NAME = 'sr-primary';

export interface SentinelDeployment {
  /** `host:port` of each sentinel, for `cluster.sentinel.nodes`. */
  sentinels: string[];
  /** The ports of the two data nodes (the first starts as primary). */
  dataPorts: number[];
  /** The data node's port the sentinels call primary now. */
  primaryPort(): Promise<number>;
  /** Forces a failover (`SENTINEL FAILOVER`) and resolves once the sentinels name a new primary. */
  failover(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

const command = (port: number, args: string[]) => redisCommand(port, args);

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await delay(100);
  }
}

/** Starts the primary, the replica and three sentinels, and waits until a failover could run. */
export async function startSentinelDeployment(): Promise<SentinelDeployment> {
  const binary = redisBinary();
  if (!binary) throw new Error('redis-server is not installed');
  const dir = await tempDir('sr-sentinel-');
  const children: ChildProcess[] = [];
  const startProcess = async (args: string[], ready: RegExp): Promise<void> => {
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(proc);
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (ready.test(output)) {
          proc.stdout!.off('data', onData);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`redis-server ${args[0]} exited (${code}) before it was ready: ${output.slice(-500)}`)));
    });
    proc.stdout!.resume();
    proc.stderr!.resume();
  };
  const stop = async () => {
    await Promise.all(
      children.map(async (proc) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = once(proc, 'exit');
        proc.kill('SIGTERM');
        await exited;
      }),
    );
    await dir.remove();
  };
  try {
    const dataPorts = [await freePort(), await freePort()];
    for (const [i, port] of dataPorts.entries()) {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path, '--dbfilename', `dump-${port}.rdb`];
      if (i > 0) args.push('--replicaof', '127.0.0.1', String(dataPorts[0]));
      await startProcess(args, /Ready to accept connections/);
    }
    await until('the replica to sync', 15_000, async () => (/master_link_status:up/.test(String(await command(dataPorts[1]!, ['INFO', 'replication']))) ? true : undefined));
    const sentinelPorts = [await freePort(), await freePort(), await freePort()];
    for (const port of sentinelPorts) {
      // A sentinel rewrites its config file, so each gets its own.
      const conf = join(dir.path, `sentinel-${port}.conf`);
      await writeFile(
        conf,
        [`port ${port}`, 'bind 127.0.0.1', `dir ${dir.path}`, `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${dataPorts[0]} 2`, `sentinel down-after-milliseconds ${SENTINEL_NAME} 1000`, `sentinel failover-timeout ${SENTINEL_NAME} 10000`, ''].join('\n'),
      );
      await startProcess([conf, '--sentinel'], /\+monitor master/);
    }
    for (const port of sentinelPorts) {
      await until(`sentinel ${port} to know the replica and the other sentinels`, 30_000, async () => {
        const replicas = (await command(port, ['SENTINEL', 'REPLICAS', SENTINEL_NAME])) as unknown[];
        const sentinels = (await command(port, ['SENTINEL', 'SENTINELS', SENTINEL_NAME])) as unknown[];
        return replicas.length >= 1 && sentinels.length >= 2 ? true : undefined;
      });
    }
    const primaryPort = async () => Number(((await command(sentinelPorts[0]!, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_NAME])) as string[])[1]);
    return {
      sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`),
      dataPorts,
      primaryPort,
      async failover(timeoutMs = 20_000) {
        const before = await primaryPort();
        await command(sentinelPorts[0]!, ['SENTINEL', 'FAILOVER', SENTINEL_NAME]);
        return until('the sentinels to name a new primary', timeoutMs, async () => {
          const now = await primaryPort();
          if (now === before) return undefined;
          // The new primary must take writes (it has left replica mode).
          return /role:master/.test(String(await command(now, ['INFO', 'replication']))) ? now : undefined;
        });
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
