/**
 * The real stack for the Authorization-header kinds (oauth2-client-credentials, jwt), shaped like
 * stack.ts: nginx built from the shipped snippet for the session's kind (`Authorization
 * $auth_authorization`, the 401 fallback with the backend's challenge), a placeholder include,
 * the session's secret files, and a config for the CLI and the daemon. The backend (a test
 * resource server) and the authorization server are the test's own; `stop()` ends the rest.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runCli, type CliResult } from './cli.js';
import { startDaemon, type Daemon } from './daemon.js';
import { placeholderInclude, startNginx, type Nginx } from './nginx.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

/** The session's name in every token stack. */
export const SESSION = 'api';
/** The nginx variable the Authorization kinds set. */
export const VARIABLE = 'auth_authorization';

export interface TokenStackOptions {
  /** The backend nginx proxies to and the session's `url`. */
  backend: string;
  /**
   * The session's kind keys (`kind`, its secret source, …), given the stack's directory so
   * secret files can live in it; `name`, `url` and `include` are filled in.
   */
  session: (dir: string) => Record<string, unknown>;
  /** Files written (mode 0600) into the stack's directory before anything starts: name -> content. */
  secrets?: Record<string, string>;
  /** Keys added to the config's `daemon:` section. */
  daemon?: Record<string, unknown>;
}

export interface HttpAnswer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export interface TokenStack {
  dir: string;
  nginx: Nginx;
  include: string;
  stateDir: string;
  configPath: string;
  /** The admin endpoint's base URL (/metrics, /healthz). */
  admin: string;
  config: Record<string, unknown>;
  /** The session entry of the config; `writeConfig` after changing it. */
  session: Record<string, unknown>;
  writeConfig(): Promise<void>;
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** A request through nginx on a connection of its own (reloads close idle kept-alive ones). */
  get(path: string, headers?: Record<string, string>): Promise<HttpAnswer>;
  includeBytes(): Promise<Buffer>;
  /** The token the include sets (without `Bearer `), or undefined when it sets none. */
  token(): Promise<string | undefined>;
  /** Starts the daemon on this stack's config; it is stopped by `stop()`. */
  startDaemon(env?: NodeJS.ProcessEnv): Promise<Daemon>;
  stop(): Promise<void>;
}

/** GET on a fresh connection (no agent): nginx reloads under the tests, and its old workers close idle connections. */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

/** The Bearer token an include text sets, or undefined. */
/** The generation in the include on disk (-1 without one). */
export async function includeGeneration(stack: Pick<TokenStack, 'include'>): Promise<number> {
  const text = await readFile(stack.include, 'utf8');
  return Number(new RegExp(`^set \\$${VARIABLE}_generation "(\\d+)";$`, 'm').exec(text)?.[1] ?? -1);
}

export function includeToken(text: string): string | undefined {
  return new RegExp(`^set \\$${VARIABLE} "Bearer ([^"]+)";$`, 'm').exec(text)?.[1];
}

/** Writes the secrets and the placeholder include, starts nginx and writes the config. */
export async function startTokenStack(options: TokenStackOptions): Promise<TokenStack> {
  const tmp = await tempDir('sr-token-');
  const dir = tmp.path;
  // nginx's workers run as nobody and must reach the temp paths under the prefix.
  await chmod(dir, 0o711);
  const include = join(dir, 'include', `${SESSION}.conf`);
  const stateDir = join(dir, 'state');
  const configPath = join(dir, 'config.yaml');
  await mkdir(join(dir, 'include'));
  await mkdir(join(dir, 'nginx'));
  await writeFile(include, placeholderInclude(VARIABLE), { mode: 0o640 });
  for (const [name, content] of Object.entries(options.secrets ?? {})) await writeFile(join(dir, name), content, { mode: 0o600 });
  const session: Record<string, unknown> = { name: SESSION, url: options.backend, ...options.session(dir), include };
  const fallback = `127.0.0.1:${await freePort()}`;
  const adminListen = `127.0.0.1:${await freePort()}`;
  let nginx: Nginx;
  try {
    nginx = await startNginx({ prefix: join(dir, 'nginx'), include, backend: options.backend, fallback, session: SESSION, credential: session });
  } catch (error) {
    await tmp.remove();
    throw error;
  }
  const config: Record<string, unknown> = {
    state_dir: stateDir,
    lock_timeout: 20,
    nginx: { binary: nginx.binary, prefix: nginx.prefix, config: nginx.confPath, pid_file: nginx.pidFile },
    daemon: { listen: fallback, admin_listen: adminListen, fallback_key_file: nginx.fallbackKeyFile, ...options.daemon },
    sessions: [session],
  };
  const daemons: Daemon[] = [];
  const stack: TokenStack = {
    dir,
    nginx,
    include,
    stateDir,
    configPath,
    admin: `http://${adminListen}`,
    config,
    session,
    writeConfig: () => writeFile(configPath, stringify(config)),
    cli: (args, env) => runCli([...args, '--config', configPath], env),
    get: (path, headers) => httpGet(nginx.url + path, headers),
    includeBytes: () => readFile(include),
    async token() {
      return includeToken(await readFile(include, 'utf8'));
    },
    async startDaemon(env) {
      const daemon = await startDaemon(configPath, env);
      daemons.push(daemon);
      return daemon;
    },
    async stop() {
      await Promise.allSettled(daemons.map((d) => d.stop()));
      await nginx.stop().catch(() => undefined);
      await tmp.remove();
    },
  };
  await stack.writeConfig();
  return stack;
}
