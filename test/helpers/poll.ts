/** Waiting on a condition by polling it, with a deadline: for tests that synchronise on state, not sleeps. */
import { setTimeout as delay } from 'node:timers/promises';

/** Polls `check` every 20 ms until it returns a value other than undefined/false. */
export async function until<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}
