/**
 * Rate-limits nginx reloads in the daemon: at most `perMinute` in any sliding minute. A routine
 * reload (a scheduled rotation) asked for while the window is full waits for room; every routine
 * caller that arrives while it waits shares it (each HUP makes nginx start a new set of workers;
 * a storm of them piles workers up). A caller arriving after the waiting reload has been sent
 * gets a reload of its own, since its include may have been written after nginx read the old one.
 *
 * An urgent reload (the include replaces a cookie the backend refuses) is never deferred: it is
 * sent at once, and a routine reload waiting for room is answered by it. `close()` (shutdown,
 * config reload) gives up a waiting reload with a ReloadError: the state keeps it owed.
 */
import { ReloadError } from '../errors.js';
import type { Reloader } from '../nginx/reload.js';

const WINDOW_MS = 60_000;

/** Wraps `inner` so routine reloads run at most `perMinute` times per sliding 60 s. */
export function rateLimitedReloader(inner: Reloader, perMinute: number, now: () => number = Date.now): Reloader {
  const recent: number[] = [];
  let waiting: { promise: Promise<void>; timer: NodeJS.Timeout; settle: (fired: Promise<void>) => void } | undefined;
  let closed = false;
  /** Milliseconds until the window has room (0 when it has). */
  const wait = (): number => {
    const t = now();
    while (recent.length > 0 && recent[0]! <= t - WINDOW_MS) recent.shift();
    return recent.length < perMinute ? 0 : recent[0]! + WINDOW_MS - t;
  };
  const fire = (): Promise<void> => {
    recent.push(now());
    return inner.reload();
  };
  /** Sends the reload for everyone waiting (from here on, later callers need one of their own). */
  const fireWaiting = (): Promise<void> => {
    const w = waiting!;
    waiting = undefined;
    clearTimeout(w.timer);
    const fired = fire();
    w.settle(fired);
    return fired;
  };
  const schedule = (ms: number, settle: (fired: Promise<void>) => void, promise: Promise<void>): void => {
    const timer = setTimeout(() => {
      // One reading of the clock decides; the timer may fire a little early.
      const left = wait();
      if (left > 0) schedule(left, settle, promise);
      else void fireWaiting().catch(() => undefined);
    }, ms);
    waiting = { promise, timer, settle };
  };
  return {
    description: `${inner.description} (routine reloads at most ${perMinute}/min)`,
    close() {
      closed = true;
      if (!waiting) return;
      clearTimeout(waiting.timer);
      waiting.settle(Promise.reject(new ReloadError('the daemon stopped while a routine reload waited for max_reloads_per_minute; the reload stays owed and the next run does it')));
      waiting = undefined;
    },
    reload(options) {
      if (closed) return Promise.reject(new ReloadError('the daemon is stopping; the reload stays owed and the next run does it'));
      if (options?.urgent) return waiting ? fireWaiting() : fire();
      if (waiting) return waiting.promise;
      // One reading of the clock decides: a second one could find the window open and clear
      // `waiting` before it was ever set, leaving a settled promise to every later caller.
      const first = wait();
      if (first === 0) return fire();
      let settle: (fired: Promise<void>) => void = () => undefined;
      const promise = new Promise<void>((resolve, reject) => (settle = (fired) => fired.then(resolve, reject)));
      schedule(first, settle, promise);
      return promise;
    },
  };
}
