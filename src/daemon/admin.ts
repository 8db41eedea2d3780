/**
 * The admin endpoint, on its own listener so nginx never forwards to it: `/healthz` (200 when
 * every session holds a valid cookie that the backend is not refusing, else 503, with JSON detail) and `/metrics` (Prometheus).
 */
import http from 'node:http';
import type { Metrics } from './metrics.js';
import type { SessionRunner } from './session-runner.js';

/** One session's health as `/healthz` reports it (never the cookie). */
export interface SessionHealth {
  session: string;
  ok: boolean;
  generation: number;
  expires: string | null;
  seconds_left: number | null;
  error: { code: string; message: string } | null;
  /** With `cluster:`: the store's state (connected, leader of the last rotation, generation lag); else null. */
  cluster: { connected: boolean; leader: string | null; store_generation: number; lag: number } | null;
}

/** Health of every session. */
export async function health(runners: SessionRunner[]): Promise<{ ok: boolean; sessions: SessionHealth[] }> {
  const sessions = await Promise.all(
    runners.map(async (r): Promise<SessionHealth> => {
      const c = await r.current();
      const err = r.error;
      return {
        session: r.name,
        // A valid cookie the backend keeps refusing (the loop guard) is not a healthy session.
        ok: c.valid && !r.looping,
        generation: c.generation,
        expires: c.expiresAt === undefined ? null : new Date(c.expiresAt).toISOString(),
        seconds_left: c.expiresAt === undefined ? null : Math.round((c.expiresAt - Date.now()) / 1000),
        error: err ? { code: err.code, message: err.message } : null,
        cluster: r.fleet ? { connected: r.fleet.connected, leader: r.fleet.leader ?? null, store_generation: r.fleet.storeGeneration, lag: r.fleet.lag } : null,
      };
    }),
  );
  return { ok: sessions.every((s) => s.ok), sessions };
}

/** Creates (but does not bind) the admin server. */
export function createAdminServer(runners: () => SessionRunner[], metrics: Metrics): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) =>
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'text/plain', 'method not allowed\n');
    if (path === '/healthz') {
      void health(runners()).then(
        (h) => reply(h.ok ? 200 : 503, 'application/json', `${JSON.stringify(h)}\n`),
        (e: unknown) => reply(500, 'text/plain', `${String(e)}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      void metrics.registry.metrics().then(
        (text) => reply(200, metrics.registry.contentType, text),
        (e: unknown) => reply(500, 'text/plain', `${String(e)}\n`),
      );
      return;
    }
    reply(404, 'text/plain', 'not found: try /healthz or /metrics\n');
  });
}
