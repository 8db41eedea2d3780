/**
 * Rate-limits nginx reloads in the daemon: at most `perMinute` in any sliding minute. A reload
 * asked for while the window is full waits for room, and all reloads asked for while one waits
 * share it (each HUP makes nginx start a new set of workers; a storm of them piles workers up).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Reloader } from '../nginx/reload.js';

/** Wraps `inner` so it runs at most `perMinute` times per sliding 60 s. */
export function rateLimitedReloader(inner: Reloader, perMinute: number, now: () => number = Date.now): Reloader {
  const recent: number[] = [];
  let waiting: Promise<void> | undefined;
  const fire = async (): Promise<void> => {
    for (;;) {
      const t = now();
      while (recent.length > 0 && recent[0]! <= t - 60_000) recent.shift();
      if (recent.length < perMinute) break;
      await delay(recent[0]! + 60_000 - t);
    }
    recent.push(now());
    await inner.reload();
  };
  return {
    description: `${inner.description} (at most ${perMinute}/min)`,
    reload() {
      if (waiting) return waiting;
      const t = now();
      const full = recent.filter((r) => r > t - 60_000).length >= perMinute;
      if (!full) return fire();
      waiting = fire().finally(() => (waiting = undefined));
      return waiting;
    },
  };
}
