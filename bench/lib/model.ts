/**
 * Starts bench/pbkdf2-model-server (the MODEL of CouchDB 3.4's password check, with its
 * couch_passwords_cache) as a child process on a free loopback port.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { LineWatcher } from '../../test/helpers/lines.js';
import type { Backend } from './stack.js';

const SERVER = fileURLToPath(new URL('../pbkdf2-model-server.js', import.meta.url));

/** What the model counted since it started or was last reset. */
export interface ModelCounts {
  /** Password checks against the stored 600,000-iteration hash (cache misses). */
  slowChecks: number;
  /** Password checks answered by couch_passwords_cache (5 iterations). */
  fastChecks: number;
  basicOk: number;
  sessions: number;
  cookie: number;
  unauthorized: number;
  /** Entries in the cache now. */
  cached: number;
}

export interface ModelOptions {
  /** Users "admin", "user2" ... "userN", one salt each, all with the admin's password; default 1. */
  users?: number;
  /** `[couch_passwords_cache] enable`; default true. */
  cache?: boolean;
  /** `[couch_passwords_cache] max_objects`; default CouchDB's 10,000. */
  maxObjects?: number;
}

export interface ModelBackend extends Backend {
  pid: number;
  /** Every user name the model knows, "admin" first. */
  users: string[];
  counts(): Promise<ModelCounts>;
  /** Empties the cache and zeroes the counts, as a restart of the node would. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startModelBackend(options: ModelOptions = {}, admin = { name: 'admin', password: 's3cret-admin' }): Promise<ModelBackend> {
  const userCount = options.users ?? 1;
  const args = ['--users', String(userCount), '--cache', options.cache === false ? 'off' : 'on', ...(options.maxObjects === undefined ? [] : ['--max-objects', String(options.maxObjects)])];
  // The password goes by environment, never on a command line.
  const child = spawn(process.execPath, [SERVER, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, MODEL_PASSWORD: admin.password } });
  const exited = once(child, 'exit');
  const out = new LineWatcher(child.stdout!);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const guard = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(guard);
    }
  };
  try {
    // Hashing every user's password at 600,000 iterations takes a while with many users.
    const line = await out.waitFor(/^listening \d+$/, 120_000, 'the PBKDF2 model backend to listen');
    const url = `http://127.0.0.1:${line.split(' ')[1]}`;
    return {
      url,
      admin,
      pid: child.pid!,
      users: Array.from({ length: userCount }, (_, i) => (i === 0 ? 'admin' : `user${i + 1}`)),
      counts: async () => (await (await fetch(`${url}/_bench_counts`)).json()) as ModelCounts,
      async reset() {
        const res = await fetch(`${url}/_bench_reset`, { method: 'POST' });
        if (!res.ok) throw new Error(`resetting the model answered ${res.status}`);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
