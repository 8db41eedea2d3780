/**
 * The benchmark's own HTTP client, for the parts that need one record per request (latency
 * over time, a storm of N requests at once): node:http with hrtime stamps. Throughput figures
 * use wrk instead (lib/wrk.ts), which is lighter on a 2-core machine.
 */
import http from 'node:http';

/** One request as the client saw it. Times are ms since the client's `t0`. */
export interface Sample {
  start: number;
  end: number;
  ms: number;
  /** HTTP status, or 0 for a socket error. */
  status: number;
  error?: string;
  /** The first 300 bytes of the body of an answer that is not 2xx, for diagnosis. */
  body?: string;
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * GET `url` once and drain the body. `agent` false (default) opens a fresh connection with
 * `Connection: close`, so every request pays the same (loopback) connect; bounded by `timeoutMs`.
 */
export function timedGet(url: string, options: { agent?: http.Agent | false; t0?: number; timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<Sample> {
  const t0 = options.t0 ?? 0;
  const agent = options.agent ?? false;
  return new Promise((resolve) => {
    const start = now();
    let settled = false;
    let body = '';
    const finish = (status: number, error?: string) => {
      if (settled) return;
      settled = true;
      const end = now();
      resolve({ start: start - t0, end: end - t0, ms: end - start, status, ...(error ? { error } : {}), ...(body ? { body } : {}) });
    };
    const req = http.get(url, { agent, headers: { ...(agent === false ? { connection: 'close' } : {}), ...options.headers }, timeout: options.timeoutMs ?? 30_000 }, (res) => {
      const keep = res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299;
      res.on('data', (chunk: Buffer) => {
        if (keep && body.length < 300) body += chunk.toString('utf8').slice(0, 300 - body.length);
      });
      res.on('end', () => finish(res.statusCode ?? 0));
      res.on('error', (e) => finish(0, e.message));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => finish(0, (e as NodeJS.ErrnoException).code ?? e.message));
  });
}

/** `count` GETs all started at once; each on its own connection. */
export async function burst(url: string, count: number, t0 = now()): Promise<{ samples: Sample[]; wallMs: number }> {
  const started = now();
  const samples = await Promise.all(Array.from({ length: count }, () => timedGet(url, { t0 })));
  return { samples, wallMs: now() - started };
}

/** A running probe: `stop()` ends it and resolves with every request, sorted by start. */
export interface Probe {
  stop(): Promise<Sample[]>;
}

/**
 * A closed-loop probe: `connections` loops, each sending the next GET as soon as the last
 * answered, until `stop()` or `maxMs`. With `keepAlive` the loops share a keep-alive agent (a
 * connection nginx closes on reload shows up as an error); without, each request connects anew.
 */
export function startProbe(url: string, options: { connections: number; maxMs: number; keepAlive: boolean; t0?: number }): Probe {
  const t0 = options.t0 ?? now();
  const agent = options.keepAlive ? new http.Agent({ keepAlive: true, maxSockets: options.connections }) : false;
  const samples: Sample[] = [];
  const stopAt = now() + options.maxMs;
  let stopped = false;
  const loop = async () => {
    while (!stopped && now() < stopAt) {
      const s = await timedGet(url, { agent, t0, timeoutMs: 10_000 });
      samples.push(s);
      // A socket error: wait a moment rather than spin while nginx swaps workers.
      if (s.status === 0) await new Promise((r) => setTimeout(r, 5));
    }
  };
  const loops = Promise.all(Array.from({ length: options.connections }, loop));
  return {
    async stop() {
      stopped = true;
      await loops;
      if (agent) agent.destroy();
      return samples.sort((a, b) => a.start - b.start);
    },
  };
}

/**
 * An open-loop probe: a new GET (own connection) every `everyMs` whatever the answers, until
 * `stop()` or `maxMs`; so a request started during a stall shows the stall in its latency.
 */
export function startOpenProbe(url: string, options: { everyMs: number; maxMs: number; t0?: number }): Probe {
  const t0 = options.t0 ?? now();
  const pending: Promise<Sample>[] = [];
  const started = now();
  const timer = setInterval(() => {
    if (now() - started > options.maxMs) return clearInterval(timer);
    pending.push(timedGet(url, { t0, timeoutMs: 30_000 }));
  }, options.everyMs);
  return {
    async stop() {
      clearInterval(timer);
      const samples = await Promise.all(pending);
      return samples.sort((a, b) => a.start - b.start);
    },
  };
}

/** Milliseconds on the client's monotonic clock (for `t0`). */
export { now as clockMs };
