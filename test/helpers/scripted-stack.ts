/**
 * A real nginx (the shipped snippets, with the 401 fallback) in front of a backend the test
 * chooses, usually a SCRIPTED one (scripted-couch.ts), and a config whose one session "couch"
 * logs in to a URL the test chooses. For faults that need a scripted backend behind nginx too;
 * the real-server equivalent is stack.ts.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runCli, type CliResult } from './cli.js';
import { placeholderInclude, startNginx, type Nginx } from './nginx.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

export interface ScriptedStackOptions {
  /** Where nginx proxies `location /`. */
  backend: string;
  /** Where the session logs in (default: `backend`). */
  login?: string;
  username: string;
  password: string;
  /** nginx's worker_shutdown_timeout (see nginx.ts). */
  workerShutdownTimeout?: string;
}

export interface ScriptedStack {
  dir: string;
  nginx: Nginx;
  include: string;
  stateDir: string;
  passwordFile: string;
  configPath: string;
  /** The fallback's host:port and the admin endpoint's base URL. */
  fallback: string;
  admin: string;
  config: Record<string, unknown>;
  /** The session entry of the config; `writeConfig` after changing it. */
  session: Record<string, unknown>;
  writeConfig(): Promise<void>;
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  includeBytes(): Promise<Buffer>;
  stop(): Promise<void>;
}

/** Writes the placeholder include, starts nginx and writes the config. */
export async function startScriptedStack(options: ScriptedStackOptions): Promise<ScriptedStack> {
  const tmp = await tempDir('sr-scripted-');
  const dir = tmp.path;
  // nginx's workers (nobody) spool bodies under the prefix: let them traverse the temp dir.
  await chmod(dir, 0o711);
  const include = join(dir, 'couch.conf');
  const stateDir = join(dir, 'state');
  const passwordFile = join(dir, 'pw');
  const configPath = join(dir, 'config.yaml');
  await writeFile(include, placeholderInclude(), { mode: 0o640 });
  await writeFile(passwordFile, `${options.password}\n`, { mode: 0o600 });
  await mkdir(join(dir, 'nginx'));
  const fallback = `127.0.0.1:${await freePort()}`;
  const adminListen = `127.0.0.1:${await freePort()}`;
  let nginx: Nginx;
  try {
    nginx = await startNginx({ prefix: join(dir, 'nginx'), include, backend: options.backend, fallback, ...(options.workerShutdownTimeout ? { workerShutdownTimeout: options.workerShutdownTimeout } : {}) });
  } catch (error) {
    await tmp.remove();
    throw error;
  }
  const session: Record<string, unknown> = { name: 'couch', url: options.login ?? options.backend, username: options.username, password_file: passwordFile, include, timeout: 5, retries: 0 };
  const config: Record<string, unknown> = {
    state_dir: stateDir,
    lock_timeout: 20,
    nginx: { binary: nginx.binary, prefix: nginx.prefix, config: nginx.confPath, pid_file: nginx.pidFile },
    daemon: { listen: fallback, admin_listen: adminListen, min_refresh_interval: 0.05, fallback_key_file: nginx.fallbackKeyFile },
    sessions: [session],
  };
  const stack: ScriptedStack = {
    dir,
    nginx,
    include,
    stateDir,
    passwordFile,
    configPath,
    fallback,
    admin: `http://${adminListen}`,
    config,
    session,
    writeConfig: () => writeFile(configPath, stringify(config)),
    cli: (args, env) => runCli([...args, '--config', configPath], env),
    includeBytes: () => readFile(include),
    async stop() {
      await nginx.stop();
      await tmp.remove();
    },
  };
  await stack.writeConfig();
  return stack;
}
