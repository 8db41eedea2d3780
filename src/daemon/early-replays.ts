/**
 * The replays that carry a credential before its include is written: the pass that obtained it
 * lets them go first. Writing the include and spawning `nginx -t` compete with a replay for the
 * daemon's one thread (a fork of the daemon blocks it for a moment), and cost the first request
 * of a recovery about 1.4 ms (bench figure 2, the fallback's replay_ms: 5.4 against 4.0 ms).
 * The head start is bounded, so a long upload cannot hold the include back.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

export class EarlyReplays {
  private active = 0;
  private idle: (() => void)[] = [];

  /** Counts one replay under way; the returned function ends it (calling it again does nothing). */
  start(): () => void {
    this.active++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      if (this.active === 0) for (const wake of this.idle.splice(0)) wake();
    };
  }

  /**
   * Resolves once no replay is under way, or after `capMs`. Waits one turn of the event loop
   * first, so the callers woken with the new credential have started their replays.
   */
  async settled(capMs: number): Promise<void> {
    await nextTurn();
    if (this.active === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idle.push(resolve);
      timer = setTimeout(resolve, capMs);
    });
    clearTimeout(timer);
  }
}
