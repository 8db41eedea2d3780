/**
 * The whole real stack for an integration test: pouchdb-server, nginx in front of it with a
 * placeholder include, a password file, and a config file for the CLI. `stop()` ends it all.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KEY_HEADER, readFallbackKey } from '../../src/nginx/fallback-key.js';
import { runCli, type CliResult } from './cli.js';
import { startCouch, type Couch } from './couch.js';
import { placeholderInclude, startNginx, type Nginx } from './nginx.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

export interface Stack {
  dir: string;
  couch: Couch;
  nginx: Nginx;
  include: string;
  stateDir: string;
  passwordFile: string;
  configPath: string;
  /** The session entry of the config; `writeConfig` after changing it. */
  session: Record<string, unknown>;
  config: Record<string, unknown>;
  writeConfig(): Promise<void>;
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** GET through nginx with no client credentials. */
  get(path: string): Promise<{ status: number; body: string }>;
  includeBytes(): Promise<Buffer>;
  /** With a fallback: the key header nginx sends it, for tests that speak to the fallback as nginx does. */
  asNginx(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /**
   * Route nginx's 401s to the daemon's fallback endpoint (and configure daemon ports): on a free
   * loopback port, or with 'unix' on a unix socket in the stack's directory (`fallback.sock`).
   */
  fallback?: boolean | 'unix';
  /** Use this backend (left running by `stop()`) instead of starting one. */
  couch?: Couch;
  /** The URL nginx and the session use instead of the backend's own (e.g. a balancer in front of it). */
  url?: string;
  /** Where nginx proxies, when not `url` (an instrument such as the header echo). */
  upstream?: string;
  /** Have nginx log every request with the status the client got (`stack.nginx.accessLog`). */
  accessLog?: boolean;
}

/** Starts pouchdb-server and nginx and writes a config whose one session is named "couch". */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const tmp = await tempDir('sr-stack-');
  const dir = tmp.path;
  const include = join(dir, 'include', 'couch.conf');
  const stateDir = join(dir, 'state');
  const passwordFile = join(dir, 'couch.password');
  const configPath = join(dir, 'config.yaml');
  // nginx's workers run as nobody and must reach the temp paths under the prefix (large bodies).
  await chmod(dir, 0o711);
  await mkdir(join(dir, 'include'));
  await mkdir(join(dir, 'nginx'));
  await writeFile(include, placeholderInclude(), { mode: 0o640 });
  const couch = options.couch ?? (await startCouch());
  const url = options.url ?? couch.url;
  const fallbackListen = options.fallback === 'unix' ? `unix:${join(dir, 'fallback.sock')}` : options.fallback ? `127.0.0.1:${await freePort()}` : undefined;
  const adminListen = `127.0.0.1:${await freePort()}`;
  let nginx: Nginx;
  try {
    nginx = await startNginx({ prefix: join(dir, 'nginx'), include, backend: options.upstream ?? url, accessLog: options.accessLog ?? false, ...(fallbackListen ? { fallback: fallbackListen } : {}) });
  } catch (error) {
    if (!options.couch) await couch.stop();
    throw error;
  }
  await writeFile(passwordFile, `${couch.admin.password}\n`, { mode: 0o600 });
  const session: Record<string, unknown> = { name: 'couch', url, username: couch.admin.name, password_file: passwordFile, include, timeout: 5, retries: 1 };
  const config: Record<string, unknown> = {
    state_dir: stateDir,
    lock_timeout: 20,
    nginx: { binary: nginx.binary, prefix: nginx.prefix, config: nginx.confPath, pid_file: nginx.pidFile },
    daemon: { listen: fallbackListen ?? `127.0.0.1:${await freePort()}`, admin_listen: adminListen, ...(nginx.fallbackKeyFile ? { fallback_key_file: nginx.fallbackKeyFile } : {}) },
    sessions: [session],
  };
  const stack: Stack = {
    dir,
    couch,
    nginx,
    include,
    stateDir,
    passwordFile,
    configPath,
    session,
    config,
    writeConfig: () => writeFile(configPath, stringify(config)),
    cli: (args, env) => runCli([...args, '--config', configPath], env),
    async get(path) {
      const res = await fetch(nginx.url + path);
      return { status: res.status, body: await res.text() };
    },
    includeBytes: () => readFile(include),
    async asNginx() {
      const key = nginx.fallbackKeyFile === undefined ? undefined : await readFallbackKey(nginx.fallbackKeyFile);
      if (key === undefined) throw new Error('this stack has no fallback key');
      return { [KEY_HEADER]: key };
    },
    async stop() {
      await Promise.allSettled([nginx.stop(), options.couch ? undefined : couch.stop()]);
      await tmp.remove();
    },
  };
  await stack.writeConfig();
  return stack;
}
