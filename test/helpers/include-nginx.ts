/**
 * A real nginx (the Debian package) for tests that need to see exactly what nginx made of an
 * include: one server block per include, each on its own free loopback port, each answering
 * `GET /_session_refresher/cookie` with "<generation> <value of $auth_cookie>" in ONE response
 * (so a reload in between cannot pair one generation with another cookie), and, when an upstream
 * is given, proxying everything else to it with `Cookie: $auth_cookie` and
 * `X-Generation: $auth_cookie_generation`, as the README's wiring does.
 */
import { join } from 'node:path';
import { nginxBinary } from './nginx.js';
import { countReloads, startNginxProcess, writeNginxConf, type NginxProcess } from './nginx-process.js';
import { freePort } from './ports.js';

export interface IncludeNginxOptions {
  /** Directory used as nginx's prefix (conf, logs, pid, temp paths). */
  prefix: string;
  /** One server block per include; each include must exist before nginx starts. */
  includes: string[];
  /** The nginx variable every include sets (default auth_cookie). */
  variable?: string;
  /** Where `location /` proxies to, e.g. http://127.0.0.1:5984; no proxy location when unset. */
  upstream?: string;
}

/** One server block: the include it reads and how to ask it what it serves. */
export interface IncludeServer {
  url: string;
  include: string;
  /** What this server serves right now: the generation and the variable's value, from one response. */
  served(): Promise<{ generation: string; cookie: string }>;
  /** Polls until the server serves `generation` (reloads are asynchronous); returns the cookie served with it. */
  waitForGeneration(generation: number, timeoutMs?: number): Promise<string>;
}

export interface IncludeNginx {
  binary: string;
  prefix: string;
  confPath: string;
  pidFile: string;
  servers: IncludeServer[];
  /** How many reloads (SIGHUP) nginx has logged. */
  reloads(): Promise<number>;
  /** Sends SIGHUP to the master, as session-refresher does. */
  reload(): void;
  stop(): Promise<void>;
}

/** Writes the config and starts nginx in the foreground (master + 1 worker). */
export async function startIncludeNginx(options: IncludeNginxOptions): Promise<IncludeNginx> {
  const binary = nginxBinary();
  if (!binary) throw new Error('nginx is not installed');
  const variable = options.variable ?? 'auth_cookie';
  const p = options.prefix;
  const ports = await Promise.all(options.includes.map(() => freePort()));
  const upstream = options.upstream ? new URL(options.upstream) : undefined;
  const proxy = upstream
    ? `
    location / {
      proxy_pass http://upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
      proxy_set_header Cookie $${variable};
      proxy_set_header X-Generation $${variable}_generation;
    }`
    : '';
  const { confPath, pidFile, errorLog } = await writeNginxConf({
    prefix: p,
    workerConnections: 512,
    ...(upstream ? { http: `  upstream upstream { server ${upstream.host}; keepalive 8; }` } : {}),
    servers: options.includes.map((include, i) => ({
      port: ports[i]!,
      body: `    include ${include};
    location = /_session_refresher/cookie { return 200 "$${variable}_generation $${variable}"; }${proxy}`,
    })),
  });
  let proc: NginxProcess | undefined;

  const serverFor = (include: string, port: number): IncludeServer => {
    const url = `http://127.0.0.1:${port}`;
    const server: IncludeServer = {
      url,
      include,
      async served() {
        const text = await (await fetch(`${url}/_session_refresher/cookie`)).text();
        const space = text.indexOf(' ');
        return { generation: text.slice(0, space), cookie: text.slice(space + 1) };
      },
      async waitForGeneration(generation, timeoutMs = 10_000) {
        const deadline = Date.now() + timeoutMs;
        let last = '';
        while (Date.now() < deadline) {
          const now = await server.served().catch((e: Error) => ({ generation: e.message, cookie: '' }));
          if (now.generation === String(generation)) return now.cookie;
          last = now.generation;
          await new Promise((r) => setTimeout(r, 20));
        }
        throw new Error(`nginx (${url}) still serves generation "${last}", expected ${generation}`);
      },
    };
    return server;
  };

  const nginx: IncludeNginx = {
    binary,
    prefix: p,
    confPath,
    pidFile,
    servers: options.includes.map((include, i) => serverFor(include, ports[i]!)),
    reloads: () => countReloads(errorLog),
    reload: () => proc?.kill('SIGHUP'),
    stop: async () => proc?.stop(),
  };
  // Ready when every server answers; fails fast if nginx exits (bad config).
  proc = await startNginxProcess(binary, p, confPath, async () => (await Promise.all(nginx.servers.map((s) => s.served().then(() => true, () => false)))).every(Boolean));
  return nginx;
}
