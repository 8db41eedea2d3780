/**
 * A real nginx for the benchmarks, built from the SHIPPED snippets exactly as
 * test/helpers/nginx.ts builds it and started by the same launcher (test/helpers/nginx-process.ts),
 * with two differences the benchmarks need:
 *  - room for a 1,000-request storm: 8,192 worker connections (1,000 clients plus their upstream
 *    connections), an accept backlog of 4,096, and 16,384 open files;
 *  - variants for comparison: the server snippet with the include replaced by a literal cookie
 *    (`static`) or by per-request Basic credentials (`basic`, one user or many); every other
 *    line stays the same.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/validate.js';
import { ensureFallbackKey } from '../../src/nginx/fallback-key.js';
import { renderSnippet } from '../../src/nginx/snippet.js';
import { nginxBinary } from '../../test/helpers/nginx.js';
import { countReloads, startNginxProcess, writeNginxConf } from '../../test/helpers/nginx-process.js';
import { freePort } from '../../test/helpers/ports.js';

/** How the proxied request is authenticated. */
export type Auth =
  /** The generated include: `set $auth_cookie ...` (what session-refresher writes). */
  | { kind: 'include' }
  /** `proxy_set_header Cookie "AuthSession=..."` written literally, no include. */
  | { kind: 'static'; cookie: string }
  /**
   * `proxy_set_header Authorization "Basic ..."` on every request, no cookie. With several
   * values, each request carries one of them picked at random (the last hex digit of
   * `$request_id`), as a proxy passing on many users' credentials would.
   */
  | { kind: 'basic'; authorization: string | string[] };

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
  /** The fallback key the snippet includes (the daemon's daemon.fallback_key_file). */
  fallbackKeyFile: string;
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

/** The variable a many-user Basic variant sets per request (see basicMap). */
const BASIC_MAP_VARIABLE = 'bench_basic_authorization';

/**
 * The http-level `map` for a many-user Basic variant: `$request_id` is 32 random hex digits, so
 * its last digit spreads requests evenly over 16 slots, slot d carrying authorizations[d % n].
 */
export function basicMap(authorizations: string[]): string {
  const slots = Array.from({ length: 16 }, (_, d) => `    ~${d.toString(16)}$ "${authorizations[d % authorizations.length]}";`);
  return `  map $request_id $${BASIC_MAP_VARIABLE} {\n${slots.join('\n')}\n  }`;
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
    const value = typeof auth.authorization === 'string' ? `"${auth.authorization}"` : `$${BASIC_MAP_VARIABLE}`;
    text = text.slice(0, at) + `proxy_set_header Authorization ${value};` + text.slice(at + clear.length);
  }
  const live = text.split('\n').filter((l) => !l.trim().startsWith('#'));
  if (live.some((l) => l.includes('$auth_cookie'))) throw new Error('the variant still refers to $auth_cookie');
  return text;
}

/** Room for a 1,000-request storm: client and upstream connections, and a deep accept queue. */
const STORM_ROOM = { workerConnections: 8192, backlog: 4096, rlimitNofile: 16384 } as const;

/** Writes the config and starts nginx in the foreground (master + 1 worker, like the tests). */
export async function startBenchNginx(options: BenchNginxOptions): Promise<BenchNginx> {
  const binary = nginxBinary();
  if (!binary) throw new Error('nginx is not installed');
  const port = await freePort();
  const p = options.prefix;
  await mkdir(p, { recursive: true });
  const fallbackKeyFile = join(p, 'fallback-key.conf');
  if (options.fallback !== undefined) await ensureFallbackKey(fallbackKeyFile);
  const checked = validateConfig({
    daemon: { listen: options.fallback ?? '127.0.0.1:9', fallback_key_file: fallbackKeyFile },
    sessions: [{ name: 'couch', url: options.backend, username: 'unused', password_env: 'UNUSED', include: options.include }],
  });
  if (!checked.ok) throw new Error(`bench nginx config: ${checked.problems.join('; ')}`);
  const snippet = (part: 'http' | 'server') => renderSnippet(part, checked.config, checked.config.sessions[0]!, 'bench', { withFallback: options.fallback !== undefined });
  await writeFile(join(p, 'session.http.conf'), snippet('http'));
  await writeFile(join(p, 'session.server.conf'), serverSnippetFor(snippet('server'), options.include, options.auth));
  const { confPath, pidFile, errorLog } = await writeNginxConf({
    prefix: p,
    ...STORM_ROOM,
    clientMaxBodySize: '128m',
    http: [`  include ${join(p, 'session.http.conf')};`, ...(options.auth.kind === 'basic' && typeof options.auth.authorization !== 'string' ? [basicMap(options.auth.authorization)] : [])].join('\n'),
    servers: [{ port, body: `    include ${join(p, 'session.server.conf')};` }],
  });
  const url = `http://127.0.0.1:${port}`;
  const probeUrl = `${url}/_session_refresher/generation/couch`;
  const generation = async () => (await fetch(probeUrl, { headers: { connection: 'close' } })).text();
  const proc = await startNginxProcess(binary, p, confPath, () => generation().then(() => true), { stop: 'fast' });
  const nginx: BenchNginx = {
    url,
    port,
    binary,
    prefix: p,
    fallbackKeyFile,
    confPath,
    pidFile,
    errorLog,
    pid: proc.pid,
    probeUrl,
    generation,
    async waitForGeneration(want, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        last = await generation().catch((e: Error) => e.message);
        if (last === String(want)) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`nginx still serves generation "${last}", expected ${want}`);
    },
    reloads: () => countReloads(errorLog),
    stop: () => proc.stop(),
  };
  return nginx;
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
  const { confPath } = await writeNginxConf({
    prefix,
    workerConnections: 4096,
    backlog: STORM_ROOM.backlog,
    http: '  keepalive_requests 100000;',
    servers: [{ port, body: `    default_type application/json;\n    location / { return 200 '"info"\\n'; }` }],
  });
  const url = `http://127.0.0.1:${port}`;
  const proc = await startNginxProcess(binary, prefix, confPath, () => fetch(url).then((r) => r.ok), { stop: 'fast' });
  return { url, stop: () => proc.stop() };
}
