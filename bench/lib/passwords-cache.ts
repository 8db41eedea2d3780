/**
 * A MODEL of CouchDB 3.4's password check with its `couch_passwords_cache` (pure, no I/O), for
 * the PBKDF2 model backend of bench figure 7. What it models, from CouchDB's behaviour:
 *  - a password is checked against its stored hash (PBKDF2-SHA256, 600,000 iterations for new
 *    hashes in 3.4) unless the cache holds an entry for (user, salt);
 *  - after a successful slow check, the cache keeps a 5-iteration PBKDF2 of the password, keyed
 *    by user and salt (a password change re-randomises the salt, so old entries stop matching);
 *  - a cached entry answers the check on its own: a match is accepted, a mismatch is rejected
 *    without the slow check;
 *  - entries are dropped after `max_idle` ms without a lookup (600,000 by default), and the
 *    least recently used ones beyond `max_objects` (10,000 by default);
 *  - `[couch_passwords_cache] enable = false` turns the cache off: every check is slow.
 * It models which checks are slow and which are fast, nothing else of CouchDB.
 */

/** `[couch_passwords_cache]` settings. */
export interface PasswordsCacheSettings {
  enable: boolean;
  maxObjects: number;
  maxIdleMs: number;
}

/** CouchDB 3.4's defaults. */
export const COUCH_DEFAULTS: PasswordsCacheSettings = { enable: true, maxObjects: 10_000, maxIdleMs: 600_000 };

/** Iterations of the cached, in-memory hash. */
export const FAST_ITERATIONS = 5;

interface Entry {
  fastHash: Buffer;
  lastUsed: number;
}

/** The cache: an LRU map with idle expiry. `now` is injectable for tests of the model itself. */
export class PasswordsCache {
  // A Map iterates in insertion order; re-inserting on every hit keeps it in LRU order.
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly settings: PasswordsCacheSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Entries held now. */
  get size(): number {
    return this.entries.size;
  }

  /** The cached 5-iteration hash for (user, salt), refreshing its idle timer; undefined on a miss. */
  lookup(user: string, salt: Buffer): Buffer | undefined {
    if (!this.settings.enable) return undefined;
    const key = keyOf(user, salt);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (this.now() - entry.lastUsed > this.settings.maxIdleMs) return undefined;
    entry.lastUsed = this.now();
    this.entries.set(key, entry);
    return entry.fastHash;
  }

  /** Records a successful slow check; drops the least recently used entries beyond max_objects. */
  insert(user: string, salt: Buffer, fastHash: Buffer): void {
    if (!this.settings.enable) return;
    const key = keyOf(user, salt);
    this.entries.delete(key);
    this.entries.set(key, { fastHash, lastUsed: this.now() });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.settings.maxObjects) break;
      this.entries.delete(oldest);
    }
  }

  /** Forgets everything, as a restart of the node would. */
  clear(): void {
    this.entries.clear();
  }
}

function keyOf(user: string, salt: Buffer): string {
  return `${user}\u0000${salt.toString('hex')}`;
}
