/**
 * Verified reload: after a HUP, poll a loopback location through nginx that answers the
 * include's `$<variable>_generation` until only the new generation is served, or give up after a
 * timeout. nginx reloads asynchronously: its master starts the new workers, lets them overlap
 * with the old ones for 100 ms, and only then tells the old ones to stop accepting connections.
 * One answer from a new worker is therefore not enough: after the first one we wait out that
 * overlap and require a few more answers, each on a new connection, before calling it served.
 */
import http from 'node:http';
import https from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import got from 'got';

/**
 * Every poll on a new connection: a kept-alive one may belong to an old worker that still serves
 * the old include until it closes, and would never show the new generation.
 */
const agent = { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };

/** nginx's overlap of old and new workers after a reload (100 ms), with a margin. */
const OVERLAP_MS = 250;
/** Answers in a row, after the overlap, that must show the new generation. */
const CONFIRMATIONS = 3;

async function served(url: string): Promise<number | undefined> {
  const body = (await got(url, { agent, retry: { limit: 0 }, timeout: { request: 2000 }, throwHttpErrors: false }).text().catch(() => '')).trim();
  return /^\d+$/.test(body) ? Number(body) : undefined;
}

/** Resolves true once `url` answers only `generation` (or a later one), false after `timeoutMs`. */
export async function waitForGeneration(url: string, generation: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let confirmed = 0;
  let overlapWaited = false;
  for (let wait = 10; Date.now() < deadline; ) {
    const seen = await served(url);
    if (seen !== undefined && seen >= generation) {
      if (!overlapWaited) {
        overlapWaited = true;
        await delay(Math.min(OVERLAP_MS, Math.max(0, deadline - Date.now())));
        continue;
      }
      if (++confirmed >= CONFIRMATIONS) return true;
      continue;
    }
    confirmed = 0;
    await delay(wait);
    wait = Math.min(wait * 2, 200);
  }
  return false;
}
