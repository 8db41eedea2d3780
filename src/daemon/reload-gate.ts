/**
 * Rate-limits nginx reloads in the daemon: at most `perMinute` in any sliding minute. A reload
 * asked for while the window is full waits for room; every caller that arrives while it waits
 * shares it (each HUP makes nginx start a new set of workers; a storm of them piles workers up).
 * A caller arriving after the waiting reload has been sent gets a reload of its own, since its
 * include may have been written after nginx began reading the old one.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Reloader } from '../nginx/reload.js';

const WINDOW_MS = 60_000;

/** Wraps `inner` so it runs at most `perMinute` times per sliding 60 s. */
export function rateLimitedReloader(inner: Reloader, perMinute: number, now: () => number = Date.now): Reloader {
  const recent: number[] = [];
  let waiting: Promise<void> | undefined;
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
  return {
    description: `${inner.description} (at most ${perMinute}/min)`,
    reload() {
      if (waiting) return waiting;
      // One reading of the clock decides: a second one could find the window open and clear
      // `waiting` before it was ever set, leaving a settled promise to every later caller.
      const first = wait();
      if (first === 0) return fire();
      waiting = (async () => {
        for (let ms = first; ms > 0; ms = wait()) await delay(ms);
        // From here on the reload is under way: later callers need one of their own.
        waiting = undefined;
        await fire();
      })();
      return waiting;
    },
  };
}
