/**
 * The parts every test and bench nginx shares: the main config around its server blocks (one
 * worker in the foreground, everything under its prefix), the master as a child process,
 * readiness (a probe answers, or nginx exits and says why), the reload count from its error log,
 * and the stop.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessLogDirectives } from './access-log.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The http-level temp path directives, all under `prefix` (nginx's workers write there). */
export function tempPaths(prefix: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `  ${k}_temp_path ${prefix}/${k};`).join('\n');
}

/** How many reloads (SIGHUP) nginx has logged in `errorLog`. */
export async function countReloads(errorLog: string): Promise<number> {
  const log = await readFile(errorLog, 'utf8').catch(() => '');
  return log.split('\n').filter((l) => l.includes('signal 1 (SIGHUP) received')).length;
}

/** One `server { }` block: it listens on 127.0.0.1:`port`; `body` is its inside, indented. */
export interface NginxServer {
  port: number;
  body: string;
}

export interface NginxConfOptions {
  /** nginx's prefix: the config, pid file, error log and temp paths go here (it must exist). */
  prefix: string;
  servers: NginxServer[];
  /** http-level lines before the servers (includes, upstreams, maps), indented. */
  http?: string;
  /** `events { worker_connections }`; default 1024. */
  workerConnections?: number;
  /** `listen ... backlog=N` on every server; unset: nginx's default (511). */
  backlog?: number;
  /** `worker_rlimit_nofile`; unset: the limit nginx inherits. */
  rlimitNofile?: number;
  /** `client_max_body_size`, e.g. "128m"; unset: nginx's default (1m). */
  clientMaxBodySize?: string;
  /** `worker_shutdown_timeout`; default "10s", so a test's graceful stop is quick. */
  workerShutdownTimeout?: string;
  /** Log every request with the status the client got to this file (see access-log.ts); unset: no access log. */
  accessLog?: string | undefined;
}

/** Where a written config put things, all under the prefix. */
export interface NginxPaths {
  confPath: string;
  pidFile: string;
  errorLog: string;
}

/**
 * Writes `<prefix>/nginx.conf`: `daemon off`, one worker, a 10 s bound on graceful worker
 * shutdown, `access_log off`, the temp paths under the prefix, then `http` and the servers.
 */
export async function writeNginxConf(options: NginxConfOptions): Promise<NginxPaths> {
  const p = options.prefix;
  const paths: NginxPaths = { confPath: join(p, 'nginx.conf'), pidFile: join(p, 'nginx.pid'), errorLog: join(p, 'error.log') };
  const backlog = options.backlog === undefined ? '' : ` backlog=${options.backlog}`;
  const servers = options.servers.map((s) => `  server {\n    listen 127.0.0.1:${s.port}${backlog};\n${s.body}\n  }`);
  const lines = [
    'daemon off;',
    'worker_processes 1;',
    ...(options.rlimitNofile === undefined ? [] : [`worker_rlimit_nofile ${options.rlimitNofile};`]),
    `worker_shutdown_timeout ${options.workerShutdownTimeout ?? '10s'};`,
    `pid ${paths.pidFile};`,
    `error_log ${paths.errorLog} notice;`,
    `events { worker_connections ${options.workerConnections ?? 1024}; }`,
    'http {',
    options.accessLog ? accessLogDirectives(options.accessLog) : '  access_log off;',
    ...(options.clientMaxBodySize === undefined ? [] : [`  client_max_body_size ${options.clientMaxBodySize};`]),
    tempPaths(p),
    ...(options.http ? [options.http] : []),
    ...servers,
    '}',
    '',
  ];
  await writeFile(paths.confPath, lines.join('\n'));
  return paths;
}

export interface NginxProcess {
  /** The master's pid. */
  pid: number;
  /** Sends a signal to the master. */
  kill(signal: NodeJS.Signals): void;
  /** Stops the master (see StartOptions.stop) and waits for it to exit. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /**
   * How `stop()` ends nginx: "graceful" (SIGQUIT: workers finish their requests; the default) or
   * "fast" (SIGTERM, then SIGKILL after 5 s; for a benchmark that need not drain its own clients).
   */
  stop?: 'graceful' | 'fast';
}

/**
 * Starts `nginx -p prefix -c confPath` (the config says `daemon off;`) and resolves once
 * `ready()` is true; fails with nginx's stderr if it exits or is not ready within 10 s.
 */
export async function startNginxProcess(binary: string, prefix: string, confPath: string, ready: () => Promise<boolean>, options: StartOptions = {}): Promise<NginxProcess> {
  const child = spawn(binary, ['-p', prefix, '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  const handle: NginxProcess = {
    pid: child.pid!,
    kill: (signal) => void child.kill(signal),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (options.stop === 'fast') {
        child.kill('SIGTERM');
        const guard = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(guard);
      } else {
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
