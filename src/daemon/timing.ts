/**
 * When the daemon acts next (pure): the next scheduled refresh and the delay before retrying a
 * failed one. Randomness is passed in so tests can pin it.
 */

/** A source of numbers in [0, 1). */
export type Random = () => number;

/**
 * Milliseconds until the next scheduled refresh: about half of what is left of the cookie's
 * life, with +-10% jitter so a fleet started together does not log in at the same second.
 * Never less than `floorMs` (so a near-expired cookie does not spin).
 */
export function nextRefreshDelay(expiresAt: number, now: number, random: Random, floorMs = 1000): number {
  const left = Math.max(0, expiresAt - now);
  const jitter = 0.9 + 0.2 * random();
  return Math.max(floorMs, Math.round((left / 2) * jitter));
}

/**
 * Milliseconds before retry number `attempt` (1 for the first retry) of a failed refresh:
 * exponential from `minMs`, capped at `maxMs`, with "full jitter" in the upper half so retries
 * from many daemons spread out but never come sooner than half the nominal delay.
 */
export function retryDelay(attempt: number, minMs: number, maxMs: number, random: Random): number {
  const nominal = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(nominal / 2 + (nominal / 2) * random());
}
