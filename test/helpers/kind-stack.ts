/**
 * A real nginx (the shipped snippets rendered for the session's kind, with the 401 fallback) in
 * front of a backend the test started, usually a SCRIPTED one (scripted-iam.ts,
 * scripted-sync-gateway.ts), a secret file, and a config whose one session has the kind keys the
 * test gives. Mirrors stack.ts, which is tied to a couchdb-session on pouchdb-server.
 */
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runCli, type CliResult } from './cli.js';
import { startDaemon, type Daemon } from './daemon.js';
import { placeholderInclude, startNginx, type Nginx } from './nginx.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

export interface KindStackOptions {
  /** Session name (default "svc"). */
  name?: string;
  /** The backend nginx proxies to and the session's `url`. */
  url: string;
  /** The session's kind keys (`kind` and its own keys), without name, url, include and the secret source. */
  kind: Record<string, unknown>;
  /** The nginx variable the include sets (the kind's default, which the test states). */
  variable: string;
  /** The secret source key to set (`api_key_file`, `password_file`) and the secret written to that file. */
  secret: { key: string; value: string };
}

export interface KindStack {
  dir: string;
  name: string;
  nginx: Nginx;
  include: string;
  stateDir: string;
  secretFile: string;
  configPath: string;
  /** The session entry of the config; `writeConfig` after changing it. */
  session: Record<string, unknown>;
  config: Record<string, unknown>;
  writeConfig(): Promise<void>;
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** Starts the daemon on this config (stopped by `stop()`). */
  daemon(): Promise<Daemon>;
  /** A request through nginx, with the client's own headers. */
  request(path: string, init?: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }>;
  includeBytes(): Promise<Buffer>;
  /** Every file of the state directory, concatenated (for leak checks). */
  stateText(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts nginx with the fallback in front of `url` and writes the config. */
export async function startKindStack(options: KindStackOptions): Promise<KindStack> {
  const name = options.name ?? 'svc';
  const tmp = await tempDir('sr-kind-');
  const dir = tmp.path;
  // nginx's workers run as nobody and must reach the temp paths under the prefix.
  await chmod(dir, 0o711);
  const include = join(dir, 'include', `${name}.conf`);
  const stateDir = join(dir, 'state');
  const secretFile = join(dir, 'secret');
  const configPath = join(dir, 'config.yaml');
  await mkdir(join(dir, 'include'));
  await mkdir(join(dir, 'nginx'));
  await writeFile(include, placeholderInclude(options.variable), { mode: 0o640 });
  await writeFile(secretFile, `${options.secret.value}\n`, { mode: 0o600 });
  const fallbackListen = `127.0.0.1:${await freePort()}`;
  const adminListen = `127.0.0.1:${await freePort()}`;
  const kindKeys = { ...options.kind, [options.secret.key]: secretFile };
  let nginx: Nginx;
  try {
    nginx = await startNginx({ prefix: join(dir, 'nginx'), include, backend: options.url, session: name, variable: options.variable, fallback: fallbackListen, credential: kindKeys });
  } catch (error) {
    await tmp.remove();
    throw error;
  }
  const session: Record<string, unknown> = { name, url: options.url, include, variable: options.variable, timeout: 5, retries: 1, ...kindKeys };
  const config: Record<string, unknown> = {
    state_dir: stateDir,
    lock_timeout: 20,
    nginx: { binary: nginx.binary, prefix: nginx.prefix, config: nginx.confPath, pid_file: nginx.pidFile },
    daemon: { listen: fallbackListen, admin_listen: adminListen, fallback_key_file: nginx.fallbackKeyFile },
    sessions: [session],
  };
  const daemons: Daemon[] = [];
  const stack: KindStack = {
    dir,
    name,
    nginx,
    include,
    stateDir,
    secretFile,
    configPath,
    session,
    config,
    writeConfig: () => writeFile(configPath, stringify(config)),
    cli: (args, env) => runCli([...args, '--config', configPath], env),
    async daemon() {
      const daemon = await startDaemon(configPath);
      daemons.push(daemon);
      return daemon;
    },
    async request(path, init = {}) {
      const res = await fetch(nginx.url + path, { method: init.method ?? 'GET', headers: init.headers ?? {}, ...(init.body === undefined ? {} : { body: init.body }) });
      return { status: res.status, body: await res.text() };
    },
    includeBytes: () => readFile(include),
    async stateText() {
      const names = await readdir(stateDir, { recursive: true, withFileTypes: true }).catch(() => []);
      const files = names.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
      return (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n');
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
