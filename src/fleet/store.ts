/**
 * The fleet store: where the nodes of a fleet share one session's cookie. The lock is for
 * efficiency (one login per rotation), the generation is for correctness (a record is only ever
 * replaced by a higher generation, so a node that lost its lock, was paused or partitioned can
 * never publish an older cookie over a newer one). Implementations: redis.ts (the real one),
 * memory.ts (one process, for tests of the logic above the store). The coordinator and the
 * daemon import only this file.
 */

/** One session's current cookie as the fleet knows it. Holds a secret: never log it whole. */
export interface FleetRecord {
  /** Fleet-wide monotonic generation; the include's generation is this number. */
  generation: number;
  /** `Name=value`, ready for the include. */
  cookie: string;
  /** Epoch ms when the cookie expires. */
  expiresAt: number;
  /** Epoch ms when the cookie was issued by the backend. */
  issuedAt: number;
  /** The node that logged in (its `node_id`). */
  issuedBy: string;
  /** Epoch ms when it was published. */
  at: number;
}

/** What a publish did: `accepted`, or refused because the store already holds `current` (at least as high). */
export interface PublishResult {
  accepted: boolean;
  /** The generation the store holds after the call. */
  current: number;
}

/** A held login lock. Renewed in the background until released or lost. */
export interface FleetLock {
  /** The random token that proves ownership. */
  readonly token: string;
  /** True once a renewal found the lock gone or owned by another token (or the TTL passed unrenewed). */
  readonly lost: boolean;
  /** Stops renewing and deletes the lock if it still holds our token (compare-and-delete). Never throws. */
  release(): Promise<void>;
}

/** Told every generation announced on the session's channel (fire-and-forget: may miss some). */
export type GenerationListener = (generation: number) => void;

/** Told each change of the command connection: true when commands can be sent. */
export type ConnectionListener = (connected: boolean) => void;

/**
 * One fleet store. Every command fails fast (rejects within its timeout) when the store is
 * unreachable; none is queued for later.
 */
export interface FleetStore {
  /** True while commands can be sent. */
  readonly connected: boolean;
  /** Why the last connection attempt failed (refused, WRONGPASS, TLS), when it did: never a secret. */
  readonly lastProblem?: string | undefined;
  /** The session's current record, or undefined when none was ever published. */
  read(session: string): Promise<FleetRecord | undefined>;
  /**
   * Tries to take the session's login lock for `ttlMs` (renewed every third of it while held).
   * Resolves undefined when another holder has it.
   */
  acquire(session: string, ttlMs: number): Promise<FleetLock | undefined>;
  /** Replaces the record only when `record.generation` is higher than the stored one, and announces it. */
  publish(session: string, record: FleetRecord): Promise<PublishResult>;
  /** Listens on the session's channel; resubscribes on reconnect. Resolves once subscribed, or at once while disconnected (the subscription is made on connect). */
  subscribe(session: string, listener: GenerationListener): Promise<void>;
  /** Listens to connection changes; returns an unsubscribe function. */
  onConnection(listener: ConnectionListener): () => void;
  /** Closes connections and stops lock renewals. */
  close(): Promise<void>;
}
