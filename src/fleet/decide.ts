/**
 * The fleet's decisions, pure: whether a record from the store replaces what a node serves,
 * which generation a node's own login takes, and whether a node may log in alone while the
 * store is unreachable.
 */
import type { FleetRecord } from './store.js';

/**
 * True when `record` should replace the cookie of generation `served`: it is higher (never
 * equal or lower, so a generation never goes down) and not expired at `now` (epoch ms).
 */
export function shouldApply(record: FleetRecord | undefined, served: number, now: number): boolean {
  return record !== undefined && record.generation > served && record.expiresAt > now;
}

/**
 * The generation a node's own new cookie takes: above both what it serves and what the store
 * holds, so the store's number drives every include and stays monotonic across the fleet.
 */
export function nextGeneration(served: number, stored: number | undefined): number {
  return Math.max(served, stored ?? 0) + 1;
}

/**
 * While the store is unreachable a node may log in alone, at most once per `intervalMs`
 * (epoch ms `lastAt` of its last lone login; undefined: never): each node then costs the backend
 * at most one login per interval, however many 401s it sees.
 */
export function loneLoginAllowed(lastAt: number | undefined, now: number, intervalMs: number): boolean {
  return lastAt === undefined || now - lastAt >= intervalMs;
}

/**
 * A generation another node may be logging in for is worth waiting for: the record is higher
 * than `served` and than `failed` (the generation that failed here), so it is not the dead one.
 */
export function awaitedRecord(record: FleetRecord | undefined, served: number, failed: number, now: number): boolean {
  return shouldApply(record, Math.max(served, failed), now);
}
