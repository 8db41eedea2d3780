/**
 * One session's place in a fleet. Before a node logs in it asks here: a higher generation in
 * the store is applied instead; else the node that takes the login lock logs in for the fleet
 * and publishes (compare-and-set), while the others wait (bounded) for that publish. The store
 * is re-read on start, on reconnect, on each announcement and every poll interval, so a lost
 * announcement only delays an update. While the store is unreachable a node keeps its cookie,
 * logs in alone only when its cookie is dead or about to expire (at most once per interval),
 * and reconciles when the store returns: the higher generation wins, else ours is published.
 */
import { ClusterUnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { awaitedRecord, loneLoginAllowed, nextGeneration, shouldApply } from './decide.js';
import type { FleetLock, FleetRecord, FleetStore } from './store.js';

/** What the coordinator needs from the node that serves the session. */
export interface FleetNode {
  /** The generation served now, and when its cookie expires (epoch ms; undefined: no cookie). */
  served(): Promise<{ generation: number; expiresAt: number | undefined }>;
  /** Installs `record` at its generation (write, nginx -t, reload). */
  apply(record: FleetRecord): Promise<void>;
}

/** Logs in and installs the new cookie at `generation`; resolves the record to publish (undefined: no new cookie). */
export type LoginAt = (generation: number) => Promise<FleetRecord | undefined>;

/** What `login` did. */
export type FleetLoginResult = 'adopted' | 'logged-in' | 'alone' | 'unchanged';

export interface CoordinatorOptions {
  store: FleetStore;
  session: string;
  /** This node's name (`issued_by`). */
  nodeId: string;
  node: FleetNode;
  lockTtlMs: number;
  pollIntervalMs: number;
  /** Longest wait for another node's publish before logging in without it. */
  waitTimeoutMs: number;
  /** While the store is unreachable: at most one lone login per this many ms. */
  loneLoginIntervalMs: number;
  log: Logger;
  now?: () => number;
}

/** The cluster state for /healthz, /metrics and `status`. */
export interface FleetStatus {
  connected: boolean;
  /** The node that issued the last generation seen in the store. */
  leader: string | undefined;
  /** The store's generation as last read. */
  storeGeneration: number;
  /** How far this node's served generation trails the store's (0: in step). */
  lag: number;
}

/** See the file comment. */
export class FleetCoordinator {
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private offConnection: (() => void) | undefined;
  private lastLoneAt: number | undefined;
  /** A record made by a lone login, to publish once the store is back. */
  private unpublished: FleetRecord | undefined;
  private stored: FleetRecord | undefined;
  private servedGeneration = 0;
  private syncing: Promise<void> | undefined;
  private readonly waiters = new Set<() => void>();
  private stopped = false;

  constructor(private readonly options: CoordinatorOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Subscribes, reads the store once, and keeps re-reading it. */
  async start(): Promise<void> {
    const { store, session, pollIntervalMs } = this.options;
    this.offConnection = store.onConnection((connected) => {
      if (connected) void this.sync();
    });
    await store.subscribe(session, () => {
      for (const wake of this.waiters) wake();
      void this.sync();
    });
    this.timer = setInterval(() => void this.sync(), pollIntervalMs);
    this.timer.unref();
    await this.sync();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.offConnection?.();
  }

  status(): FleetStatus {
    const storeGeneration = this.stored?.generation ?? 0;
    return { connected: this.options.store.connected, leader: this.stored?.issuedBy, storeGeneration, lag: Math.max(0, storeGeneration - this.servedGeneration) };
  }

  /** Re-reads the store: applies a higher generation, or publishes a lone login's. Never throws. */
  sync(): Promise<void> {
    this.syncing ??= this.doSync().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  /**
   * Gets a new cookie for the node whose generation `failed` was refused (`urgent`) or is due
   * for renewal: adopts a higher one from the store, waits for the lock holder's, or logs in
   * through `loginAt` and publishes. Throws ClusterUnavailableError when the store is down and
   * a lone login is not (yet) due; the caller retries later with the cookie it has.
   */
  async login(failed: number, urgent: boolean, loginAt: LoginAt): Promise<FleetLoginResult> {
    const { store, session, lockTtlMs } = this.options;
    const served = await this.refreshServed();
    if (!store.connected) return this.alone(served, failed, urgent, loginAt);
    try {
      const record = await this.read();
      if (record && awaitedRecord(record, served.generation, failed, this.now())) return this.adopt(record);
      const lock = (await store.acquire(session, lockTtlMs)) ?? (await this.waitForPublish(served.generation, failed));
      if (!lock) throw new ClusterUnavailableError(`fleet: another node has held the login lock of session ${session} for longer than wait_timeout without publishing`);
      if ('generation' in lock) return this.adopt(lock);
      return await this.lead(lock, served.generation, failed, loginAt);
    } catch (error) {
      if (!(error instanceof ClusterUnavailableError) || store.connected) throw error;
      return this.alone(await this.refreshServed(), failed, urgent, loginAt);
    }
  }

  private async lead(lock: FleetLock, served: number, failed: number, loginAt: LoginAt): Promise<FleetLoginResult> {
    try {
      // Another node may have published between our read and our lock.
      const record = await this.read();
      if (record && awaitedRecord(record, served, failed, this.now())) return await this.adopt(record);
      const mine = await loginAt(nextGeneration(served, record?.generation));
      if (!mine) return 'unchanged';
      this.servedGeneration = mine.generation;
      if (lock.lost) this.options.log.warn({ generation: mine.generation }, 'fleet: the login lock was lost during the login; publishing only if no newer generation exists');
      await this.publishOrYield(mine);
      return 'logged-in';
    } finally {
      await lock.release();
    }
  }

  /** Publishes `mine`; when the store refuses it, installs the store's record (even of the same generation: the fleet serves one cookie). */
  private async publishOrYield(mine: FleetRecord): Promise<void> {
    const result = await this.options.store.publish(this.options.session, mine);
    if (result.accepted) {
      this.stored = mine;
      return;
    }
    const record = await this.read();
    this.options.log.info({ generation: mine.generation, store_generation: result.current }, 'fleet: the store already holds this generation or a newer one; serving the store\'s');
    if (record && record.generation >= mine.generation && record.cookie !== mine.cookie && record.expiresAt > this.now()) await this.adopt(record);
  }

  private async alone(served: { generation: number; expiresAt: number | undefined }, failed: number, urgent: boolean, loginAt: LoginAt): Promise<FleetLoginResult> {
    const { session, pollIntervalMs, loneLoginIntervalMs } = this.options;
    const now = this.now();
    // The cookie that failed was already replaced (by a lone login a moment ago): nothing to do.
    if (served.generation > failed && served.expiresAt !== undefined && served.expiresAt > now) return 'unchanged';
    const expiring = served.expiresAt === undefined || served.expiresAt - now <= Math.max(30_000, 3 * pollIntervalMs);
    if (!urgent && !expiring) throw new ClusterUnavailableError(`fleet: the store is unreachable; session ${session} keeps its valid cookie (generation ${served.generation}) until it is back`);
    if (!loneLoginAllowed(this.lastLoneAt, now, loneLoginIntervalMs)) throw new ClusterUnavailableError(`fleet: the store is unreachable and session ${session} logged in alone less than ${loneLoginIntervalMs / 1000}s ago`);
    this.lastLoneAt = now;
    this.options.log.warn({ generation: served.generation }, 'fleet: the store is unreachable; logging in alone');
    const mine = await loginAt(nextGeneration(served.generation, this.stored?.generation));
    if (!mine) return 'unchanged';
    this.servedGeneration = mine.generation;
    this.unpublished = mine;
    return 'alone';
  }

  private async doSync(): Promise<void> {
    if (this.stopped || !this.options.store.connected) return;
    try {
      const served = await this.refreshServed();
      const record = await this.read();
      if (record && shouldApply(record, served.generation, this.now())) {
        await this.adopt(record);
      } else if (this.unpublished && this.unpublished.generation > (record?.generation ?? 0)) {
        const mine = this.unpublished;
        this.unpublished = undefined;
        await this.publishOrYield(mine);
      } else if (this.unpublished) {
        // The store holds a generation at least as high: the fleet serves that one.
        const mine = this.unpublished;
        this.unpublished = undefined;
        if (record && record.cookie !== mine.cookie && record.expiresAt > this.now()) await this.adopt(record);
      }
    } catch (error) {
      this.options.log.warn({ code: (error as { code?: string }).code }, `fleet: could not sync with the store: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async adopt(record: FleetRecord): Promise<'adopted'> {
    await this.options.node.apply(record);
    this.servedGeneration = Math.max(this.servedGeneration, record.generation);
    return 'adopted';
  }

  private async read(): Promise<FleetRecord | undefined> {
    const record = await this.options.store.read(this.options.session);
    if (record) this.stored = record;
    return record;
  }

  private async refreshServed(): Promise<{ generation: number; expiresAt: number | undefined }> {
    const served = await this.options.node.served();
    this.servedGeneration = served.generation;
    return served;
  }

  /**
   * Waits (bounded by waitTimeoutMs) for a publish above `served` and `failed`, woken by
   * announcements and re-reading each step; takes the lock itself when the holder's expires
   * (it died or stalled), so no node waits longer than the lock's TTL plus a step.
   */
  private async waitForPublish(served: number, failed: number): Promise<FleetRecord | FleetLock | undefined> {
    const deadline = this.now() + this.options.waitTimeoutMs;
    const step = Math.min(this.options.pollIntervalMs, 250);
    while (!this.stopped && this.now() < deadline) {
      const record = await this.read();
      if (record && awaitedRecord(record, served, failed, this.now())) return record;
      const lock = await this.options.store.acquire(this.options.session, this.options.lockTtlMs);
      if (lock) return lock;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(1, Math.min(step, deadline - this.now())));
        this.waiters.add(wake);
      });
    }
    return undefined;
  }
}
