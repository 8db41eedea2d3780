/**
 * One look at the fleet store for the one-shot commands (`status`, `check`): connect, read each
 * session's record, close. The Redis client is loaded only here and only with `cluster:`.
 */
import type { ClusterConfig } from '../config/cluster-schema.js';
import { silentLogger } from '../log.js';
import { connectedWithin } from './connected.js';
import { openFleetStore } from './factory.js';
import type { FleetRecord } from './store.js';

/** What the store said: each session's record (undefined: none published), or why it could not be asked. */
export type StoreLook = { connected: true; where: string; records: Map<string, FleetRecord | undefined> } | { connected: false; where: string; problem: string };

/** Connects (waiting at most `cluster.command_timeout`, at least 1 s), reads `sessions`' records, closes. Throws ConfigError for an unreadable password or CA file. */
export async function lookAtStore(cluster: ClusterConfig, sessions: readonly string[]): Promise<StoreLook> {
  const where = cluster.sentinel ? `redis sentinel "${cluster.sentinel.name}" at ${cluster.sentinel.nodes.join(',')}` : `redis at ${new URL(cluster.url!).host}`;
  const store = await openFleetStore(cluster, silentLogger);
  try {
    const waitMs = Math.max(1000, cluster.command_timeout * 1000);
    const connected = await connectedWithin(store, waitMs);
    if (!connected) return { connected: false, where, problem: `not connected within ${waitMs / 1000}s${store.lastProblem ? ` (${store.lastProblem})` : ''}` };
    const records = new Map<string, FleetRecord | undefined>();
    for (const name of sessions) records.set(name, await store.read(name));
    return { connected: true, where, records };
  } catch (error) {
    return { connected: false, where, problem: error instanceof Error ? error.message : String(error) };
  } finally {
    await store.close();
  }
}
