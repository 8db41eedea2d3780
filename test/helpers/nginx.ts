/**
 * A real nginx (the Debian package) for tests: its own prefix in a temp dir, a free loopback
 * port, a pid file, and a server built from the SHIPPED snippets (nginx/*.template, filled like
 * `session-refresher nginx-snippet`), so every integration test also tests what users install.
 * Under CI=true a missing nginx fails the test run.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/validate.js';
import { ensureFallbackKey } from '../../src/nginx/fallback-key.js';
import { renderSnippet } from '../../src/nginx/snippet.js';
import { countReloads, startNginxProcess, writeNginxConf, type NginxProcess } from './nginx-process.js';
import { freePort } from './ports.js';

/** The nginx binary, from $NGINX_BIN or the usual Debian locations. */
export function nginxBinary(): string | undefined {
  const candidates = [process.env.NGINX_BIN, '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].filter((c): c is string => Boolean(c));
  return candidates.find((c) => spawnSync(c, ['-v'], { stdio: 'ignore' }).status === 0);
}

/**
 * For `test(..., { skip })`: a reason to skip when nginx is missing on a developer machine.
 * Under CI=true nginx is required, so this throws instead of skipping.
 */
export function skipWithoutNginx(): string | false {
  if (nginxBinary()) return false;
  if (process.env.CI === 'true') throw new Error('nginx is not installed, and under CI=true integration tests may not skip: install Debian\'s nginx (.ci/run does)');
  return 'nginx is not installed (apt-get install nginx); integration test skipped';
}

export interface NginxOptions {
  /** Directory used as nginx's prefix (conf, logs, pid, temp paths). */
  prefix: string;
  /** The include session-refresher writes. */
  include: string;
  /** The backend nginx proxies to, e.g. http://127.0.0.1:5984. */
  backend: string;
  /** The nginx variable the include sets. */
  variable?: string;
  /**
   * The daemon's fallback listener (host:port); when set, 401s go to @session_refresh, with the
   * fallback key made at `<prefix>/fallback-key.conf` (give the daemon `fallbackKeyFile`).
   */
  fallback?: string;
  /** Session name sent to the fallback. */
  session?: string;
  /**
   * The session's credential keys (`kind` and its own keys) the snippet is rendered for; default
   * a couchdb-session. The include's variable then defaults to the kind's.
   */
  credential?: Record<string, unknown>;
  /** Log every request, with the status the client got, to `<prefix>/access.log` (see access-log.ts); default off. */
  accessLog?: boolean;
  /** nginx's worker_shutdown_timeout (default 10s, so a test's graceful stop is quick). */
  workerShutdownTimeout?: string;
}

export interface Nginx {
  url: string;
  port: number;
  binary: string;
  prefix: string;
  confPath: string;
  pidFile: string;
  errorLog: string;
  /** The access log (JSON lines, see access-log.ts), when started with `accessLog`. */
  accessLog?: string;
  /** The shipped loopback probe answering the generation nginx serves. */
  probeUrl: string;
  /** With `fallback`: the key file the snippet includes (the daemon's `daemon.fallback_key_file`). */
  fallbackKeyFile?: string;
  /** How many reloads (SIGHUP) nginx has logged. */
  reloads(): Promise<number>;
  /**
   * Polls the loopback probe until nginx serves `generation` (reloads are asynchronous), or
   * with `atLeast`, any later one too (for a daemon that keeps renewing while the test looks).
   */
  waitForGeneration(generation: number, timeoutMs?: number, options?: { atLeast?: boolean }): Promise<void>;
  /** The generation nginx serves right now. */
  generation(): Promise<string>;
  stop(): Promise<void>;
}

/** The placeholder include nginx starts with before the first login. */
export function placeholderInclude(variable = 'auth_cookie'): string {
  return `set $${variable} "";\nset $${variable}_generation "0";\n`;
}

/** Writes the config and starts nginx in the foreground (master + 1 worker). */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const binary = nginxBinary();
  if (!binary) throw new Error('nginx is not installed');
  const kindKeys = options.credential ?? { username: 'unused', password_env: 'UNUSED' };
  const variable = options.variable ?? (kindKeys.kind === undefined || kindKeys.kind === 'couchdb-session' ? 'auth_cookie' : 'auth_authorization');
  const port = await freePort();
  const p = options.prefix;
  const accessLog = options.accessLog ? join(p, 'access.log') : undefined;
  const fallbackKeyFile = join(p, 'fallback-key.conf');
  // The server is built from the shipped snippets, exactly as `session-refresher nginx-snippet` fills them.
  const session = options.session ?? 'couch';
  const checked = validateConfig({
    daemon: { listen: options.fallback ?? '127.0.0.1:9', fallback_key_file: fallbackKeyFile },
    sessions: [{ name: session, url: options.backend, include: options.include, variable, ...kindKeys }],
  });
  if (!checked.ok) throw new Error(`test nginx config: ${checked.problems.join('; ')}`);
  // As `nginx-snippet --placeholder` does: the snippet includes the key, so it must exist first.
  if (options.fallback !== undefined) await ensureFallbackKey(fallbackKeyFile);
  const snippet = (part: 'http' | 'server') => renderSnippet(part, checked.config, checked.config.sessions[0]!, 'test', { withFallback: options.fallback !== undefined });
  await writeFile(join(p, 'session.http.conf'), snippet('http'));
  await writeFile(join(p, 'session.server.conf'), snippet('server'));
  const { confPath, pidFile, errorLog } = await writeNginxConf({
    prefix: p,
    workerConnections: 8192,
    clientMaxBodySize: '128m',
    workerShutdownTimeout: options.workerShutdownTimeout ?? '10s',
    accessLog,
    http: `  include ${join(p, 'session.http.conf')};`,
    servers: [{ port, body: `    include ${join(p, 'session.server.conf')};` }],
  });
  let proc: NginxProcess | undefined;
  const url = `http://127.0.0.1:${port}`;
  const nginx: Nginx = {
    url,
    port,
    binary,
    prefix: p,
    confPath,
    pidFile,
    errorLog,
    ...(accessLog ? { accessLog } : {}),
    probeUrl: `${url}/_session_refresher/generation/${session}`,
    ...(options.fallback !== undefined ? { fallbackKeyFile } : {}),
    reloads: () => countReloads(errorLog),
    async generation() {
      const res = await fetch(nginx.probeUrl);
      return res.text();
    },
    async waitForGeneration(generation, timeoutMs = 10_000, options = {}) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      let seen = false;
      const reached = (served: string) => (options.atLeast ? /^\d+$/.test(served) && Number(served) >= generation : served === String(generation));
      while (Date.now() < deadline) {
        last = await nginx.generation().catch((e: Error) => e.message);
        if (reached(last)) {
          // nginx's master lets new and old workers accept side by side for 100 ms after a
          // reload: one answer from a new worker does not mean the next request meets one.
          if (seen) return;
          seen = true;
          await new Promise((r) => setTimeout(r, 250));
          continue;
        }
        seen = false;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`nginx still serves generation "${last}", expected ${options.atLeast ? 'at least ' : ''}${generation}`);
    },
    stop: async () => proc?.stop(),
  };
  // Ready when the probe answers; fails fast if nginx exits (bad config).
  proc = await startNginxProcess(binary, p, confPath, () => nginx.generation().then(() => true));
  return nginx;
}
