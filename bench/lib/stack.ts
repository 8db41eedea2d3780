/**
 * The benchmark stack: a backend (pouchdb-server, or the PBKDF2 model), a real nginx built from
 * the shipped snippets with the generated include, and a config for the CLI and the daemon,
 * all in one temp directory. Like test/helpers/stack.ts, with the bench's nginx (room for a
 * 1,000-request storm) and `daemon.max_reloads_per_minute: 10000`, so the daemon's reload cap
 * (default 12 a minute) does not hold back 200 invalidations in a row.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runCli, type CliResult } from '../../test/helpers/cli.js';
import { placeholderInclude } from '../../test/helpers/nginx.js';
import { freePort } from '../../test/helpers/ports.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { startBenchNginx, startMinimalUpstream, type Auth, type BenchNginx } from './nginx.js';

export interface Backend {
  url: string;
  admin: { name: string; password: string };
}

export interface BenchStack {
  dir: string;
  backend: Backend;
  nginx: BenchNginx;
  include: string;
  configPath: string;
  config: Record<string, unknown>;
  fallbackListen: string;
  adminListen: string;
  cli(args: string[]): Promise<CliResult>;
  /** The `AuthSession=...` value the include holds now. */
  cookie(): Promise<string>;
  /**
   * Starts another nginx with another auth variant, on the same backend or on `backendUrl`, with
   * the same fallback lines; stopped by `stop`.
   */
  variant(name: string, auth: Auth, backendUrl?: string): Promise<BenchNginx>;
  /** Starts a minimal upstream (stopped by `stop`); see startMinimalUpstream. */
  minimalUpstream(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts nginx in front of `backend` and writes a config whose one session is "couch". */
export async function startBenchStack(backend: Backend, options: { fallback?: boolean } = {}): Promise<BenchStack> {
  const tmp = await tempDir('sr-bench-');
  const dir = tmp.path;
  const include = join(dir, 'include', 'couch.conf');
  const passwordFile = join(dir, 'couch.password');
  const configPath = join(dir, 'config.yaml');
  await chmod(dir, 0o711);
  await mkdir(join(dir, 'include'));
  await writeFile(include, placeholderInclude(), { mode: 0o640 });
  await writeFile(passwordFile, `${backend.admin.password}\n`, { mode: 0o600 });
  const fallbackListen = `127.0.0.1:${await freePort()}`;
  const adminListen = `127.0.0.1:${await freePort()}`;
  const extra: { stop(): Promise<void> }[] = [];
  let nginx: BenchNginx;
  try {
    nginx = await startBenchNginx({ prefix: join(dir, 'nginx'), include, backend: backend.url, ...(options.fallback === false ? {} : { fallback: fallbackListen }), auth: { kind: 'include' } });
  } catch (error) {
    await tmp.remove();
    throw error;
  }
  const config: Record<string, unknown> = {
    state_dir: join(dir, 'state'),
    lock_timeout: 20,
    log_level: 'info',
    nginx: { binary: nginx.binary, prefix: nginx.prefix, config: nginx.confPath, pid_file: nginx.pidFile },
    daemon: { listen: fallbackListen, admin_listen: adminListen, min_refresh_interval: 0.05, max_reloads_per_minute: 10000, fallback_key_file: nginx.fallbackKeyFile },
    sessions: [{ name: 'couch', url: backend.url, username: backend.admin.name, password_file: passwordFile, include, timeout: 10, retries: 1 }],
  };
  await writeFile(configPath, stringify(config));
  return {
    dir,
    backend,
    nginx,
    include,
    configPath,
    config,
    fallbackListen,
    adminListen,
    cli: (args) => runCli([...args, '--config', configPath]),
    async cookie() {
      const text = await readFile(include, 'utf8');
      const m = /set \$auth_cookie "(AuthSession=[^"]+)";/.exec(text);
      if (!m) throw new Error(`the include holds no cookie:\n${text}`);
      return m[1]!;
    },
    async variant(name, auth, backendUrl) {
      const n = await startBenchNginx({ prefix: join(dir, `nginx-${name}`), include, backend: backendUrl ?? backend.url, ...(options.fallback === false ? {} : { fallback: fallbackListen }), auth });
      extra.push(n);
      return n;
    },
    async minimalUpstream() {
      const upstream = await startMinimalUpstream(join(dir, `upstream-${extra.length}`));
      extra.push(upstream);
      return upstream.url;
    },
    async stop() {
      await Promise.allSettled([nginx.stop(), ...extra.map((n) => n.stop())]);
      await tmp.remove();
    },
  };
}
