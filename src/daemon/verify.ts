/**
 * Verified reload: after a HUP, poll a loopback location through nginx that answers the
 * include's `$<variable>_generation` until it shows the new generation, or give up after a
 * timeout (nginx reloads asynchronously; old workers finish their requests first).
 */
import { setTimeout as delay } from 'node:timers/promises';
import got from 'got';

/** Resolves true once `url` answers `generation` (or a later one), false after `timeoutMs`. */
export async function waitForGeneration(url: string, generation: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 10; Date.now() < deadline; wait = Math.min(wait * 2, 200)) {
    const body = await got(url, { retry: { limit: 0 }, timeout: { request: 2000 }, throwHttpErrors: false }).text().catch(() => '');
    const seen = Number(body.trim());
    if (/^\d+$/.test(body.trim()) && seen >= generation) return true;
    await delay(wait);
  }
  return false;
}
