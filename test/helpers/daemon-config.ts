/**
 * The configuration of a daemon in front of one test nginx, as the demo and the daemon tests
 * write it: one session named "couch", its password in a 0600 file, state under the given
 * directory, the fallback on the address nginx sends its 401s to, and the admin endpoint on a
 * free loopback port.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './ports.js';

export interface DaemonConfigOptions {
  /** Directory for config.yaml, couch.password and state/ (it must exist). */
  dir: string;
  /** The nginx to test and reload: the fields of a test nginx (test/helpers/nginx.ts). */
  nginx: { binary: string; prefix: string; confPath: string; pidFile: string; fallbackKeyFile?: string | undefined };
  /** `daemon.listen`: where nginx's @session_refresh sends rejected requests (host:port). */
  fallback: string;
  /** The backend's base URL, the account and its password (written to couch.password). */
  url: string;
  username: string;
  password: string;
  /** The include nginx reads. */
  include: string;
  /** `daemon.min_refresh_interval` in seconds; default 0.05, so a test may invalidate right after a login. */
  minRefreshInterval?: number;
  /** The session's `verify_url` (the generation probe through nginx); unset: no verification. */
  verifyUrl?: string;
}

/** A written daemon configuration. */
export interface DaemonConfig {
  configPath: string;
  passwordFile: string;
  /** What was written, for tests that read a key back. */
  config: Record<string, unknown>;
}

/** Writes the password file and config.yaml; returns their paths. */
export async function writeDaemonConfig(options: DaemonConfigOptions): Promise<DaemonConfig> {
  const passwordFile = join(options.dir, 'couch.password');
  await writeFile(passwordFile, `${options.password}\n`, { mode: 0o600 });
  const { binary, prefix, confPath, pidFile, fallbackKeyFile } = options.nginx;
  const config: Record<string, unknown> = {
    state_dir: join(options.dir, 'state'),
    nginx: { binary, prefix, config: confPath, pid_file: pidFile },
    daemon: {
      listen: options.fallback,
      admin_listen: `127.0.0.1:${await freePort()}`,
      min_refresh_interval: options.minRefreshInterval ?? 0.05,
      ...(fallbackKeyFile === undefined ? {} : { fallback_key_file: fallbackKeyFile }),
    },
    sessions: [
      {
        name: 'couch',
        url: options.url,
        username: options.username,
        password_file: passwordFile,
        include: options.include,
        ...(options.verifyUrl === undefined ? {} : { verify_url: options.verifyUrl }),
      },
    ],
  };
  const configPath = join(options.dir, 'config.yaml');
  await writeFile(configPath, stringify(config));
  return { configPath, passwordFile, config };
}
