/**
 * A real nginx for the benchmarks, built from the SHIPPED snippets exactly as
 * test/helpers/nginx.ts builds it, with two differences the benchmarks need:
 *  - room for a 1,000-request storm: the test helper's `worker_connections 1024` is exhausted by
 *    1,000 client connections plus their upstream connections, so this one allows 8,192;
 *  - variants for comparison: the server snippet with the include replaced by a literal cookie
 *    (`static`) or by per-request Basic credentials (`basic`); every other line stays the same.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/validate.js';
import { renderSnippet } from '../../src/nginx/snippet.js';
import { nginxBinary } from '../../test/helpers/nginx.js';
import { freePort } from '../../test/helpers/ports.js';

/** How the proxied request is authenticated. */
export type Auth =
  /** The generated include: `set $auth_cookie ...` (what session-refresher writes). */
  | { kind: 'include' }
  /** `proxy_set_header Cookie "AuthSession=..."` written literally, no include. */
  | { kind: 'static'; cookie: string }
  /** `proxy_set_header Authorization "Basic ..."` on every request, no cookie. */
  | { kind: 'basic'; authorization: string };

export interface BenchNginxOptions {
  prefix: string;
  /** The include session-refresher writes (read only with auth.kind "include"). */
  include: string;
  backend: string;
  /** The daemon's fallback listener; when set, 401s go to @session_refresh. */
  fallback?: string;
  auth: Auth;
}

export interface BenchNginx {
  url: string;
  port: number;
  binary: string;
  prefix: string;
  confPath: string;
  pidFile: string;
  errorLog: string;
  /** The master's pid. */
  pid: number;
  probeUrl: string;
  generation(): Promise<string>;
  waitForGeneration(generation: number, timeoutMs?: number): Promise<void>;
  /** Counts SIGHUPs nginx logged. */
  reloads(): Promise<number>;
  stop(): Promise<void>;
}

/** The server snippet for a variant: the shipped text, with only the auth lines changed. */
export function serverSnippetFor(shipped: string, include: string, auth: Auth): string {
  if (auth.kind === 'include') return shipped;
  const lines = shipped.split('\n');
  const includeLine = `include ${include};`;
  if (!lines.some((l) => l.trim() === includeLine)) throw new Error(`the shipped server snippet has no "${includeLine}" line`);
  const mustReplace = (text: string, from: string, to: string): string => {
    if (!text.includes(from)) throw new Error(`the shipped server snippet has no "${from}"`);
    return text.split(from).join(to);
  };
  let text = lines.filter((l) => l.trim() !== includeLine).join('\n');
  // The generation probe and the fallback header name the include's variable: a literal 0.
  text = mustReplace(text, '"$auth_cookie_generation"', '"0"').split('$auth_cookie_generation').join('"0"');
  if (auth.kind === 'static') {
    text = mustReplace(text, 'proxy_set_header Cookie $auth_cookie;', `proxy_set_header Cookie "${auth.cookie}";`);
  } else {
    text = mustReplace(text, 'proxy_set_header Cookie $auth_cookie;', 'proxy_set_header Cookie "";');
    // Only the main location's line: the fallback location keeps clearing Authorization.
    const clear = 'proxy_set_header Authorization "";';
    const at = text.indexOf(clear);
    if (at < 0) throw new Error(`the shipped server snippet has no "${clear}"`);
    text = text.slice(0, at) + `proxy_set_header Authorization "${auth.authorization}";` + text.slice(at + clear.length);
  }
  const live = text.split('\n').filter((l) => !l.trim().startsWith('#'));
  if (live.some((l) => l.includes('$auth_cookie'))) throw new Error('the variant still refers to $auth_cookie');
  return text;
}

/** Writes the config and starts nginx in the foreground (master + 1 worker, like the tests). */
export async function startBenchNginx(options: BenchNginxOptions): Promise<BenchNginx> {
  const binary = nginxBinary();
  if (!binary) throw new Error('nginx is not installed');
  const port = await freePort();
  const p = options.prefix;
  await mkdir(p, { recursive: true });
  const confPath = join(p, 'nginx.conf');
  const pidFile = join(p, 'nginx.pid');
  const errorLog = join(p, 'error.log');
  const checked = validateConfig({
    daemon: { listen: options.fallback ?? '127.0.0.1:9' },
    sessions: [{ name: 'couch', url: options.backend, username: 'unused', password_env: 'UNUSED', include: options.include }],
  });
  if (!checked.ok) throw new Error(`bench nginx config: ${checked.problems.join('; ')}`);
  const snippet = (part: 'http' | 'server') => renderSnippet(part, checked.config, checked.config.sessions[0]!, 'bench', { withFallback: options.fallback !== undefined });
  await writeFile(join(p, 'session.http.conf'), snippet('http'));
  await writeFile(join(p, 'session.server.conf'), serverSnippetFor(snippet('server'), options.include, options.auth));
  await writeFile(
    confPath,
    `daemon off;
worker_processes 1;
worker_rlimit_nofile 16384;
worker_shutdown_timeout 10s;
pid ${pidFile};
error_log ${errorLog} notice;
events { worker_connections 8192; }
http {
  access_log off;
  client_max_body_size 128m;
  client_body_temp_path ${p}/client_body;
  proxy_temp_path ${p}/proxy;
  fastcgi_temp_path ${p}/fastcgi;
  uwsgi_temp_path ${p}/uwsgi;
  scgi_temp_path ${p}/scgi;
  include ${join(p, 'session.http.conf')};
  server {
    listen 127.0.0.1:${port} backlog=4096;
    include ${join(p, 'session.server.conf')};
  }
}
`,
  );
  const child: ChildProcess = spawn(binary, ['-p', p, '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const nginx: BenchNginx = {
    url,
    port,
    binary,
    prefix: p,
    confPath,
    pidFile,
    errorLog,
    pid: child.pid!,
    probeUrl: `${url}/_session_refresher/generation/couch`,
    async generation() {
      const res = await fetch(nginx.probeUrl, { headers: { connection: 'close' } });
      return res.text();
    },
    async waitForGeneration(generation, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        last = await nginx.generation().catch((e: Error) => e.message);
        if (last === String(generation)) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`nginx still serves generation "${last}", expected ${generation}`);
    },
    async reloads() {
      const log = await readFile(errorLog, 'utf8').catch(() => '');
      return log.split('\n').filter((l) => l.includes('signal 1 (SIGHUP) received')).length;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // SIGTERM: fast shutdown; a benchmark does not need to drain its own clients.
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await nginx.generation().then(() => true, () => false)) return nginx;
    await new Promise((r) => setTimeout(r, 20));
  }
  await nginx.stop();
  throw new Error(`nginx did not start: ${stderr}`);
}

/**
 * A minimal upstream: an nginx that answers every request 200 with a tiny JSON body. In front
 * of it, the proxy's own cost is most of the work, which is what the static-vs-include
 * comparison needs to see; behind pouchdb-server the backend's cost hides it.
 */
export async function startMinimalUpstream(prefix: string): Promise<{ url: string; stop(): Promise<void> }> {
  const binary = nginxBinary();
  if (!binary) throw new Error('nginx is not installed');
  await mkdir(prefix, { recursive: true });
  const port = await freePort();
  const confPath = join(prefix, 'nginx.conf');
  await writeFile(
    confPath,
    `daemon off;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} notice;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    default_type application/json;
    location / { return 200 '"info"\\n'; }
  }
}
`,
  );
  const child = spawn(binary, ['-p', prefix, '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await fetch(url).then((r) => r.ok, () => false)) return { url, stop };
    await new Promise((r) => setTimeout(r, 20));
  }
  await stop();
  throw new Error(`the minimal upstream nginx did not start: ${stderr}`);
}
