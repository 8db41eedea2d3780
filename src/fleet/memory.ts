/**
 * A fleet store inside one process, for tests of the logic above the store (the coordinator).
 * Same contract as redis.ts: the lock renews itself, a publish is a compare-and-set on the
 * generation, and while `down` every command fails at once.
 */
import { randomBytes } from 'node:crypto';
import { ClusterUnavailableError } from '../errors.js';
import { RenewingLock } from './lock.js';
import type { ConnectionListener, FleetLock, FleetRecord, FleetStore, GenerationListener, PublishResult } from './store.js';

/** See the file comment. `setDown(true)` simulates an unreachable store. */
export class MemoryStore implements FleetStore {
  private readonly records = new Map<string, FleetRecord>();
  private readonly locks = new Map<string, { token: string; until: number }>();
  private readonly channels = new Map<string, Set<GenerationListener>>();
  private readonly connectionListeners = new Set<ConnectionListener>();
  private down = false;
  private readonly held = new Set<FleetLock>();
  /** Commands run, by name, for tests that count them. */
  readonly calls: Record<string, number> = {};

  get connected(): boolean {
    return !this.down;
  }

  /** Makes the store unreachable (or reachable again) and tells the connection listeners. */
  setDown(down: boolean): void {
    if (this.down === down) return;
    this.down = down;
    for (const listener of this.connectionListeners) listener(!down);
  }

  async read(session: string): Promise<FleetRecord | undefined> {
    this.command('read');
    const record = this.records.get(session);
    return record && { ...record };
  }

  async acquire(session: string, ttlMs: number): Promise<FleetLock | undefined> {
    this.command('acquire');
    const now = Date.now();
    const held = this.locks.get(session);
    if (held && held.until > now) return undefined;
    const token = randomBytes(8).toString('hex');
    this.locks.set(session, { token, until: now + ttlMs });
    const lock = new RenewingLock(token, ttlMs, {
      renew: async (t, ttl) => {
        this.command('renew');
        const current = this.locks.get(session);
        if (current?.token !== t || current.until <= Date.now()) return false;
        current.until = Date.now() + ttl;
        return true;
      },
      release: async (t) => {
        this.command('release');
        if (this.locks.get(session)?.token === t) this.locks.delete(session);
      },
    });
    this.held.add(lock);
    return lock;
  }

  async publish(session: string, record: FleetRecord): Promise<PublishResult> {
    this.command('publish');
    const stored = this.records.get(session)?.generation ?? 0;
    if (stored >= record.generation) return { accepted: false, current: stored };
    this.records.set(session, { ...record });
    for (const listener of this.channels.get(session) ?? []) queueMicrotask(() => listener(record.generation));
    return { accepted: true, current: record.generation };
  }

  async subscribe(session: string, listener: GenerationListener): Promise<void> {
    const set = this.channels.get(session) ?? new Set();
    set.add(listener);
    this.channels.set(session, set);
  }

  onConnection(listener: ConnectionListener): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  async close(): Promise<void> {
    await Promise.all([...this.held].map((l) => l.release()));
  }

  private command(name: string): void {
    if (this.down) throw new ClusterUnavailableError(`memory store: cannot ${name}: not connected`);
    this.calls[name] = (this.calls[name] ?? 0) + 1;
  }
}
