/**
 * Opens the fleet store a `cluster:` section names: reads its password and CA file (the
 * password goes to the client, never to argv, a log or an error) and connects without waiting,
 * so a daemon starts and serves its cookie while Redis is still unreachable.
 */
import { hostname } from 'node:os';
import type { ClusterConfig } from '../config/cluster-schema.js';
import { ConfigError, describeSystemError } from '../errors.js';
import type { Logger } from '../log.js';
import { MAX_PASSWORD_FILE_BYTES, readSecretLine, type SecretSource } from '../credentials/secret.js';
import { readSmallFile, UnsafeFileError } from '../small-file.js';
import { createRedisStore } from './redis.js';
import type { FleetStore } from './store.js';

/** Largest password or CA file read. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** This node's name in the store: `cluster.node_id`, else the host name. */
export function nodeId(cluster: ClusterConfig): string {
  return cluster.node_id ?? hostname();
}

/** Opens the store for `cluster`. Throws ConfigError when its password or CA cannot be read. */
export async function openFleetStore(cluster: ClusterConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<FleetStore> {
  const [password, ca] = await Promise.all([readClusterPassword(cluster, env), cluster.ca_file ? readFile(cluster.ca_file, 'cluster.ca_file') : undefined]);
  return createRedisStore({ url: cluster.url, sentinel: cluster.sentinel, username: cluster.username, password, ca, keyPrefix: cluster.key_prefix, commandTimeoutMs: cluster.command_timeout * 1000, log });
}

/** The Redis password from the cluster's one source (as a session password is read), or undefined without one. */
async function readClusterPassword(cluster: ClusterConfig, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (!cluster.password_file && !cluster.password_env && !cluster.password_credential) return undefined;
  const source: SecretSource = { session: 'cluster', owner: 'cluster', prefix: 'password', what: 'Redis password', file: cluster.password_file, env: cluster.password_env, credential: cluster.password_credential, maxBytes: MAX_PASSWORD_FILE_BYTES };
  return readSecretLine(source, env);
}

async function readFile(path: string, key: string): Promise<Buffer> {
  let bytes: Buffer | undefined;
  try {
    bytes = await readSmallFile(path, { maxBytes: MAX_SECRET_FILE_BYTES, followLinks: true });
  } catch (error) {
    throw new ConfigError([`${key}: cannot read ${path}: ${error instanceof UnsafeFileError ? error.message : describeSystemError(error)}`], 'cluster', { cause: error });
  }
  if (bytes === undefined) throw new ConfigError([`${key}: cannot read ${path}: ENOENT: no such file or directory`], 'cluster');
  return bytes;
}
