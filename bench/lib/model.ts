/**
 * Starts bench/pbkdf2-model-server (the MODEL of CouchDB 3.4's default password check) as a
 * child process on a free loopback port.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { LineWatcher } from '../../test/helpers/lines.js';
import type { Backend } from './stack.js';

const SERVER = fileURLToPath(new URL('../pbkdf2-model-server.js', import.meta.url));

export interface ModelBackend extends Backend {
  pid: number;
  /** What the model counted: Basic checks, logins, cookie requests, 401s. */
  counts(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export async function startModelBackend(admin = { name: 'admin', password: 's3cret-admin' }): Promise<ModelBackend> {
  const child = spawn(process.execPath, [SERVER, admin.name, admin.password], { stdio: ['ignore', 'pipe', 'inherit'] });
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
    const line = await out.waitFor(/^listening \d+$/, 30_000, 'the PBKDF2 model backend to listen');
    const url = `http://127.0.0.1:${line.split(' ')[1]}`;
    return {
      url,
      admin,
      pid: child.pid!,
      counts: async () => (await (await fetch(`${url}/_bench_counts`)).json()) as Record<string, number>,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
