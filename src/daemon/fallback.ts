/**
 * The 401 fallback endpoint. nginx's `error_page 401 = @session_refresh` sends a rejected
 * request here with headers naming the session and the generation that failed; the request is
 * replayed with the current cookie (a refresh first, shared by all callers, when the failed
 * generation is the current one). One replay only: a second 401 goes back to the client as is.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { KEY_HEADER } from '../nginx/fallback-key.js';
import { isLoopbackHost } from './listen.js';
import type { Metrics } from './metrics.js';
import { CHALLENGE_HEADER, GENERATION_HEADER, MAX_CHALLENGE, SESSION_HEADER, hasDotSegment, replay, replayTarget, type ReplayOutcome } from './replay.js';
import type { SessionRunner } from './session-runner.js';

export interface FallbackOptions {
  /** Looks a session's runner up by name (the set changes when the config is reloaded). */
  runner: (name: string) => SessionRunner | undefined;
  /** The backend base URL of a session. */
  backendUrl: (name: string) => string | undefined;
  metrics: Metrics;
  log: Logger;
  allowNonLoopback: boolean;
  /** True when a request's key header holds the install's key (constant-time). */
  keyMatches: (presented: string | string[] | undefined) => boolean;
  replayTimeoutMs: number;
}

/** The fallback HTTP server, with a count of requests in flight for graceful shutdown. */
export interface FallbackServer {
  server: http.Server;
  inFlight(): number;
  /** Resolves when no request is in flight. */
  drained(): Promise<void>;
}

/** What a client is told when no session is available: nothing about the backend, the user or the cause. */
export const UNAVAILABLE_REASON = 'the backend session is unavailable; try again after Retry-After seconds';

function sendJson(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers }).end(text);
}

/** A refusal: the status, why (for the log and the body), and for a 403 which door turned it away. */
export interface Refusal {
  status: number;
  reason: string;
  forbidden?: 'peer' | 'key';
}

/** Why a request may not be replayed, or undefined when it may. Only nginx gets past the first two checks. */
export function refuseReason(req: IncomingMessage, allowNonLoopback: boolean, keyMatches: FallbackOptions['keyMatches']): Refusal | undefined {
  const remote = req.socket.remoteAddress;
  if (remote !== undefined && !allowNonLoopback && !isLoopbackHost(remote)) return { status: 403, reason: 'the fallback endpoint accepts loopback clients only', forbidden: 'peer' };
  if (!keyMatches(req.headers[KEY_HEADER])) return { status: 403, reason: 'the request does not carry this install\'s fallback key: only nginx, with the snippet nginx-snippet generates, may use the fallback', forbidden: 'key' };
  const url = req.url ?? '';
  // Origin-form only: an absolute URI or "//host" must never choose where the replay goes.
  if (!url.startsWith('/') || url.startsWith('//')) return { status: 400, reason: 'the request target must be a path (origin-form)' };
  if (hasDotSegment(url)) return { status: 400, reason: 'the request path has a "." or ".." segment (in some spelling: %2e, %2f, %5c, backslash, double-encoded)' };
  if (req.method === 'CONNECT' || req.method === 'TRACE') return { status: 405, reason: `${req.method} is not replayed` };
  if (!req.headers[SESSION_HEADER]) return { status: 400, reason: `missing ${SESSION_HEADER} header (set it in nginx's @session_refresh location)` };
  const generation = req.headers[GENERATION_HEADER];
  if (generation !== undefined && !/^\d+$/.test(String(generation))) return { status: 400, reason: `${GENERATION_HEADER} must be a generation number` };
  return undefined;
}

/** Why a replay's 401 went back to the client, by what the runner decided. */
const UNAUTHORIZED_REASON = {
  authorization: 'the backend confirmed the session is valid: its 401 is an authorization answer for this request',
  refreshed: 'the backend refused the request again with a cookie obtained for it',
  stale: 'the backend refused the request with the current cookie as well',
} as const;

/** The replays_total outcome label for a replay's result and the runner's verdict. */
export function replayLabel(outcome: ReplayOutcome, verdict: 'stale' | 'authorization' | 'refreshed'): string {
  if (outcome !== 'replayed') return outcome === 'unauthorized_again' && verdict === 'authorization' ? 'not_session' : outcome;
  return verdict === 'stale' ? 'stale_generation' : 'replayed';
}

/** At most one log line per this interval about refused intruders, so a flood cannot fill the disk. */
const FORBIDDEN_LOG_INTERVAL_MS = 60_000;

/** Logs the first refusal at once and then at most one line per interval, with the count in between. */
function rateLimitedWarning(log: Logger, intervalMs: number): { note(refusal: Refusal): void } {
  let last = -Infinity;
  let suppressed = 0;
  return {
    note(refusal) {
      const now = Date.now();
      if (now - last < intervalMs) {
        suppressed++;
        return;
      }
      last = now;
      const hint = refusal.forbidden === 'key' ? 'if this is your nginx, regenerate its snippet with `session-refresher nginx-snippet` and reload it' : 'bind daemon.listen to loopback or a unix socket';
      log.warn({ reason: refusal.forbidden, refused_since_last_line: suppressed }, `fallback request refused with 403: ${refusal.reason}; ${hint}`);
      suppressed = 0;
    },
  };
}

/** Creates (but does not bind) the fallback server. */
export function createFallbackServer(options: FallbackOptions): FallbackServer {
  const forbiddenLog = rateLimitedWarning(options.log, FORBIDDEN_LOG_INTERVAL_MS);
  const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 256 }), https: new https.Agent({ keepAlive: true, maxSockets: 256 }) };
  let active = 0;
  let waiters: (() => void)[] = [];
  const done = () => {
    active--;
    if (active === 0) {
      for (const w of waiters) w();
      waiters = [];
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    const refused = refuseReason(req, options.allowNonLoopback, options.keyMatches);
    const name = String(req.headers[SESSION_HEADER] ?? '');
    if (refused?.forbidden) {
      // Not nginx: nothing about the request is trusted, not even the session it names.
      options.metrics.fallbackForbidden.inc({ reason: refused.forbidden });
      forbiddenLog.note(refused);
      req.resume();
      sendJson(res, 403, { error: 'forbidden' }, { connection: 'close' });
      return;
    }
    if (refused) {
      options.metrics.replays.inc({ session: name || 'none', outcome: 'bad_request' });
      options.log.warn({ session: name || undefined, status: refused.status, method: req.method }, `fallback request refused: ${refused.reason}`);
      req.resume();
      sendJson(res, refused.status, { error: 'bad_request', reason: refused.reason }, { connection: 'close' });
      return;
    }
    const runner = options.runner(name);
    const base = options.backendUrl(name);
    if (!runner || !base) {
      options.metrics.replays.inc({ session: 'unknown', outcome: 'bad_request' });
      req.resume();
      sendJson(res, 400, { error: 'bad_request', reason: `no session named in ${SESSION_HEADER} is configured` });
      return;
    }
    const failed = req.headers[GENERATION_HEADER] === undefined ? undefined : Number(req.headers[GENERATION_HEADER]);
    const log = options.log.child({ session: name });
    log.debug({ method: req.method, failed_generation: failed }, 'fallback: request received');
    // nginx passes the backend's challenge on (RFC 6750: `Bearer error="invalid_token"`); only
    // nginx gets this far, and the value is only matched, never stored or echoed.
    const challengeHeader = req.headers[CHALLENGE_HEADER];
    const challenge = typeof challengeHeader === 'string' && challengeHeader.length <= MAX_CHALLENGE ? challengeHeader : undefined;
    const got = await runner.cookieForReplay(failed, challenge);
    const decided = process.hrtime.bigint();
    if (!got.ok) {
      options.metrics.replays.inc({ session: name, outcome: got.code === 'ERR_SESSION_LOOP' ? 'session_loop' : 'refresh_failed' });
      // The client learns only that there is no session and which log line tells why: the
      // reason names the backend and the user, and quotes what the backend said.
      const requestId = randomUUID();
      log.warn({ request_id: requestId, code: got.code, retry_after: got.retryAfter, reason: got.reason }, 'fallback: no session to replay with; answering 503');
      req.resume();
      sendJson(res, 503, { error: 'session_unavailable', reason: UNAVAILABLE_REASON, request_id: requestId }, { 'retry-after': String(got.retryAfter) });
      return;
    }
    const target = replayTarget(base, req.url!);
    const requestId = randomUUID();
    // A 401 on an authorization answer is the backend's word on the request; on a new or newer
    // cookie it may mean that cookie died on its way, and the request is worth one more try.
    const retryOn401 = got.verdict === 'authorization' ? undefined : (replayChallenge: string | undefined) => runner.cookieAfterReplay401(got.generation, replayChallenge);
    const replaying = replay(req, res, { target, credential: got.cookie, header: runner.header, timeoutMs: options.replayTimeoutMs, agent: target.protocol === 'https:' ? agents.https : agents.http, requestId, retryOn401 });
    // The include of an early cookie waits for this replay (see early-replays.ts).
    const { outcome, error, retried } = await replaying.finally(() => got.done?.());
    const label = retried && outcome === 'replayed' ? 'replayed_after_retry' : replayLabel(outcome, got.verdict);
    options.metrics.replays.inc({ session: name, outcome: label });
    options.metrics.fallbackLatency.observe({ session: name }, Number(process.hrtime.bigint() - started) / 1e9);
    // Where the time went: deciding (probe, login, waits) and the replay itself, in ms.
    const ms = (from: bigint, to: bigint) => Math.round(Number(to - from) / 1e4) / 100;
    const fields = { method: req.method, failed_generation: failed, generation: got.generation, verdict: got.verdict, outcome: label, decide_ms: ms(started, decided), replay_ms: ms(decided, process.hrtime.bigint()) };
    if (error) log.warn({ ...fields, request_id: requestId, reason: error }, 'fallback: request replayed');
    else if (outcome === 'unauthorized_again') log.warn({ ...fields, reason: UNAUTHORIZED_REASON[got.verdict] }, 'fallback: request replayed; a 401 reached the client');
    else log.info(fields, 'fallback: request replayed');
  };

  const server = http.createServer((req, res) => {
    active++;
    res.once('close', done);
    handle(req, res).catch((error: unknown) => {
      options.log.error({ err: error }, 'fallback: unexpected error');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal_error' });
      else res.destroy();
    });
  });
  // CONNECT never reaches the request handler; refuse it explicitly.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  server.on('close', () => {
    agents.http.destroy();
    agents.https.destroy();
  });
  return {
    server,
    inFlight: () => active,
    drained: () => (active === 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
  };
}
