/** Waiting for a fleet store's connection (at start, and for the one-shot commands). */
import type { FleetStore } from './store.js';

/** Resolves true once `store` is connected (at once if it is), false after `ms`. */
export function connectedWithin(store: FleetStore, ms: number): Promise<boolean> {
  if (store.connected) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stop();
      resolve(false);
    }, ms);
    const stop = store.onConnection((up) => {
      if (!up) return;
      clearTimeout(timer);
      stop();
      resolve(true);
    });
  });
}
