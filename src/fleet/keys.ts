/**
 * Redis key names for one session. The `{prefix:session}` hash tag keeps a session's keys in one
 * slot, so they stay together on Redis Cluster and one Lua script may touch them all.
 */

/** The default `cluster.key_prefix`. */
export const DEFAULT_KEY_PREFIX = 'session-refresher';

/** The keys and channel of one session. */
export interface SessionKeys {
  /** Hash: generation, cookie, expires_at, issued_at, issued_by, at. */
  current: string;
  /** String: the login lock's token, with a TTL. */
  lock: string;
  /** Pub/sub channel: each accepted generation, as a decimal string. */
  channel: string;
}

/** The keys of `session` under `prefix`. */
export function sessionKeys(prefix: string, session: string): SessionKeys {
  const tag = `{${prefix}:${session}}`;
  return { current: `${tag}:current`, lock: `${tag}:lock`, channel: `${tag}:generations` };
}
