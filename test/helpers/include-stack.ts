/**
 * session-refresher wired to an include-nginx (see include-nginx.ts): N sessions, each with its
 * own include read by its own nginx server block, a password file, a state directory and a
 * config file for the CLI. The backend (`url`) and nginx's upstream are the caller's choice.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runCli, type CliResult } from './cli.js';
import { startIncludeNginx, type IncludeNginx } from './include-nginx.js';
import { placeholderInclude } from './nginx.js';
import { tempDir } from './tmp.js';

export interface IncludeStackOptions {
  /** Session names; session i writes includes[i], served by nginx.servers[i]. */
  names: string[];
  /** The backend every session logs in to. */
  url: string;
  username: string;
  password: string;
  /** Where nginx proxies `location /` (optional). */
  upstream?: string;
}

export interface IncludeStack {
  dir: string;
  nginx: IncludeNginx;
  includes: string[];
  stateDir: string;
  configPath: string;
  /** The config; `writeConfig` after changing it. */
  config: Record<string, unknown>;
  sessions: Record<string, unknown>[];
  writeConfig(): Promise<void>;
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  includeBytes(i?: number): Promise<Buffer>;
  stop(): Promise<void>;
}

/** Writes placeholder includes, starts nginx and writes the config. */
export async function startIncludeStack(options: IncludeStackOptions): Promise<IncludeStack> {
  const tmp = await tempDir('sr-incstack-');
  const dir = tmp.path;
  const stateDir = join(dir, 'state');
  const configPath = join(dir, 'config.yaml');
  const passwordFile = join(dir, 'backend.password');
  await mkdir(join(dir, 'include'));
  await mkdir(join(dir, 'nginx'));
  const includes = options.names.map((name) => join(dir, 'include', `${name}.conf`));
  for (const include of includes) await writeFile(include, placeholderInclude(), { mode: 0o640 });
  await writeFile(passwordFile, `${options.password}\n`, { mode: 0o600 });
  let nginx: IncludeNginx;
  try {
    nginx = await startIncludeNginx({ prefix: join(dir, 'nginx'), includes, ...(options.upstream ? { upstream: options.upstream } : {}) });
  } catch (error) {
    await tmp.remove();
    throw error;
  }
  const sessions = options.names.map((name, i) => ({ name, url: options.url, username: options.username, password_file: passwordFile, include: includes[i], timeout: 5, retries: 1 }));
  const config: Record<string, unknown> = {
    state_dir: stateDir,
    lock_timeout: 20,
    nginx: { binary: nginx.binary, prefix: nginx.prefix, config: nginx.confPath, pid_file: nginx.pidFile },
    sessions,
  };
  const stack: IncludeStack = {
    dir,
    nginx,
    includes,
    stateDir,
    configPath,
    config,
    sessions,
    writeConfig: () => writeFile(configPath, stringify(config)),
    cli: (args, env) => runCli([...args, '--config', configPath], env),
    includeBytes: (i = 0) => readFile(includes[i]!),
    async stop() {
      await nginx.stop();
      await tmp.remove();
    },
  };
  await stack.writeConfig();
  return stack;
}
