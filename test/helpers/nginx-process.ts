/**
 * The parts every test nginx shares: temp paths under its prefix, the foreground master as a
 * child process, readiness (a probe answers, or nginx exits and says why), the reload count
 * from its error log, and a graceful stop.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';

/** The http-level temp path directives, all under `prefix` (nginx's workers write there). */
export function tempPaths(prefix: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `  ${k}_temp_path ${prefix}/${k};`).join('\n');
}

/** How many reloads (SIGHUP) nginx has logged in `errorLog`. */
export async function countReloads(errorLog: string): Promise<number> {
  const log = await readFile(errorLog, 'utf8').catch(() => '');
  return log.split('\n').filter((l) => l.includes('signal 1 (SIGHUP) received')).length;
}

export interface NginxProcess {
  /** Sends a signal to the master. */
  kill(signal: NodeJS.Signals): void;
  /** SIGQUIT (graceful) and wait for the master to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `nginx -p prefix -c confPath` (the config says `daemon off;`) and resolves once
 * `ready()` is true; fails with nginx's stderr if it exits or is not ready within 10 s.
 */
export async function startNginxProcess(binary: string, prefix: string, confPath: string, ready: () => Promise<boolean>): Promise<NginxProcess> {
  const child = spawn(binary, ['-p', prefix, '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  const handle: NginxProcess = {
    kill: (signal) => void child.kill(signal),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGQUIT');
        await exited;
      }
    },
  };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await ready().catch(() => false)) return handle;
    await new Promise((r) => setTimeout(r, 20));
  }
  await handle.stop();
  throw new Error(`nginx did not start: ${stderr}`);
}
