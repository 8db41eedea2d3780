/**
 * Invalidations on a schedule: the backend's cookie secret changed every `intervalMs` through
 * its `_config` (data kept), as a secret rotation, failover or restart would do to a live
 * deployment. Every rotation that the backend accepted is counted and timed.
 */
import type { Couch } from './couch.js';

export interface SecretRotation {
  /** Rotations the backend accepted so far. */
  count(): number;
  /** When each accepted rotation completed (ms since the epoch). */
  readonly times: number[];
  /** Rotations the backend refused (the run is then not the one intended). */
  readonly failures: Error[];
  /** Stops scheduling, waits for a rotation in flight, and resolves with the final count. */
  stop(): Promise<number>;
}

/**
 * Starts rotating `couch`'s secret every `intervalMs` (the first one `intervalMs` from now),
 * on a fixed cadence: a slow rotation does not push the next ones back.
 */
export function rotateSecretEvery(couch: Couch, intervalMs: number): SecretRotation {
  const times: number[] = [];
  const failures: Error[] = [];
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let next = Date.now() + intervalMs;
  const tick = () => {
    inFlight = couch.rotateSecret().then(
      () => void times.push(Date.now()),
      (e: Error) => void failures.push(e),
    );
    void inFlight.then(schedule);
  };
  const schedule = () => {
    if (stopped) return;
    next += intervalMs;
    timer = setTimeout(tick, Math.max(0, next - Date.now()));
  };
  timer = setTimeout(tick, intervalMs);
  return {
    count: () => times.length,
    times,
    failures,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
      return times.length;
    },
  };
}
