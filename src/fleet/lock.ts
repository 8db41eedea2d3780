/**
 * A held login lock that renews itself: every third of its TTL it extends the TTL while the
 * lock still holds our token. The lock is lost when a renewal finds another token (or none), or
 * when no renewal has succeeded for a whole TTL (the store may have expired it meanwhile).
 */
import type { FleetLock } from './store.js';

/** The store operations a renewing lock needs. */
export interface LockOps {
  /** Extends the TTL while the key holds `token`; resolves false when it does not. */
  renew(token: string, ttlMs: number): Promise<boolean>;
  /** Deletes the key while it holds `token`. */
  release(token: string): Promise<void>;
}

/** A lock taken at `takenAt` (epoch ms) for `ttlMs`, renewed until released or lost. */
export class RenewingLock implements FleetLock {
  private confirmedAt: number;
  private gone = false;
  private released = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly token: string,
    private readonly ttlMs: number,
    private readonly ops: LockOps,
    takenAt: number = Date.now(),
  ) {
    this.confirmedAt = takenAt;
    this.timer = setInterval(() => void this.renew(), Math.max(1, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  get lost(): boolean {
    if (!this.gone && Date.now() - this.confirmedAt >= this.ttlMs) this.gone = true;
    return this.gone;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    if (this.lost) return;
    await this.ops.release(this.token).catch(() => undefined);
  }

  private async renew(): Promise<void> {
    if (this.released || this.lost) return clearInterval(this.timer);
    const startedAt = Date.now();
    try {
      if (await this.ops.renew(this.token, this.ttlMs)) this.confirmedAt = startedAt;
      else this.gone = true;
    } catch {
      // The store is unreachable: `lost` turns true once the TTL has passed unconfirmed.
    }
    if (this.gone) clearInterval(this.timer);
  }
}
