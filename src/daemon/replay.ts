/**
 * Replaying a rejected request to the backend with the fresh credential (cookie or token): the original method, path
 * and query, end-to-end headers and the body streamed through; the backend's status, headers
 * (minus hop-by-hop and Set-Cookie) and body streamed back. The target is always the session's
 * configured backend, never a host taken from the request.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { streamedBytesCounter } from './stream-garbage.js';

/** RFC 9110 hop-by-hop headers, plus proxy headers that must not travel on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Headers the fallback endpoint receives from nginx that are for it alone. */
export const SESSION_HEADER = 'x-session-refresher-session';
export const GENERATION_HEADER = 'x-session-refresher-generation';
/** The backend's `WWW-Authenticate` on the 401 nginx intercepted (RFC 6750 says whether the token died). */
export const CHALLENGE_HEADER = 'x-session-refresher-challenge';
/** Longest `WWW-Authenticate` read (from nginx's challenge header or a replay's 401); a longer one counts as none. */
export const MAX_CHALLENGE = 2048;

/** The request header a credential travels in. */
export type CredentialHeader = 'cookie' | 'authorization';

export type ReplayOutcome = 'replayed' | 'unauthorized_again' | 'backend_error';

/** End-to-end request headers for the replay: no hop-by-hop, no client credentials, ours in `header`. */
export function replayRequestHeaders(incoming: IncomingHttpHeaders, target: URL, credential: string, header: CredentialHeader = 'cookie'): OutgoingHttpHeaders {
  const listed = connectionListed(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    // Our own headers (session, generation, the install's key) never travel on.
    if (name === 'host' || name === 'cookie' || name === 'authorization' || name.startsWith('x-session-refresher-')) continue;
    out[name] = value;
  }
  out.host = target.host;
  out[header] = credential;
  return out;
}

/** End-to-end response headers for the client: no hop-by-hop, and never the backend's Set-Cookie. */
export function replayResponseHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = connectionListed(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name) || name === 'set-cookie') continue;
    out[name] = value;
  }
  return out;
}

function connectionListed(value: string | string[] | undefined): Set<string> {
  return new Set([value ?? []].flat().flatMap((v) => v.split(',')).map((v) => v.trim().toLowerCase()).filter(Boolean));
}

/**
 * Percent-encodings that could turn into a dot, a separator or a segment end at some hop that
 * decodes before normalising: %2e (.), %2f (/), %5c (\\), %3b (;), %3f (?), %23 (#), their
 * overlong UTF-8 and IIS %u spellings, and %25 (%), so a double-encoded %252e is seen as well.
 */
const DOT_RELEVANT = /%(?:2e|2f|5c|3b|3f|23|25)|%c0%ae|%c0%af|%c1%9c|%u00(?:2e|2f|5c)/gi;

const DECODED: Record<string, string> = { '2e': '.', '2f': '/', '5c': '\\', '3b': ';', '3f': '?', '23': '#', '25': '%', c0ae: '.', c0af: '/', c19c: '\\', u002e: '.', u002f: '/', u005c: '\\' };

/** How many layers of percent-encoding are peeled off; a path still changing after that is refused. */
const MAX_DECODE_ROUNDS = 8;

/**
 * True when a request path has a "." or ".." segment in any spelling: "%2e" (any case, also
 * double-encoded as "%252e" or overlong), separated by "/", "\\", "%2f" or "%5c", and ended by
 * the separator, the end, or ";", "?" or "#" (path parameters and encoded query marks). A proxy
 * or backend that decodes before it normalises would resolve such a segment, and ".." could
 * climb out of the backend's path prefix. The query (after the first raw "?") is not looked at.
 */
export function hasDotSegment(requestPath: string): boolean {
  const q = requestPath.indexOf('?');
  // The URL parser drops tabs and newlines, so "/.\t./" would still climb: drop them first too.
  let path = (q < 0 ? requestPath : requestPath.slice(0, q)).replace(/[\t\n\r]/g, '');
  for (let round = 0; ; round++) {
    const next = path.replace(DOT_RELEVANT, (m) => DECODED[m.slice(1).replace('%', '').toLowerCase()] ?? m);
    if (next === path) break;
    if (round === MAX_DECODE_ROUNDS) return true;
    path = next;
  }
  return path.split(/[/\\]/).some((segment) => /^\.{1,2}(?:[;?#]|$)/.test(segment));
}

/**
 * The backend URL for a request path: the session URL's origin and path prefix, then the path.
 * Throws RangeError for a path with dot segments (the fallback refuses those with 400 first).
 */
export function replayTarget(base: string, requestPath: string): URL {
  if (hasDotSegment(requestPath)) throw new RangeError('the request path has dot segments');
  const url = new URL(base);
  const prefix = url.pathname.replace(/\/+$/, '');
  const q = requestPath.indexOf('?');
  url.pathname = prefix + (q < 0 ? requestPath : requestPath.slice(0, q));
  url.search = q < 0 ? '' : requestPath.slice(q);
  return url;
}

export interface ReplayOptions {
  target: URL;
  /** The credential's whole header value, and the header it travels in. */
  credential: string;
  header: CredentialHeader;
  timeoutMs: number;
  agent: http.Agent | https.Agent;
  /** Put in a 502 body so the client can quote it; the log line with the cause carries the same id. */
  requestId?: string | undefined;
  /**
   * Asked when the replay itself got 401 and the request can be sent again (no body, or a body
   * of at most RETRY_BODY_MAX bytes, kept for this): a cookie to try once more with, or
   * undefined to pass the 401 to the client. The cookie a replay carries can die on its way
   * (the backend rotated its secret again in between).
   */
  retryOn401?: ((challenge: string | undefined) => Promise<string | undefined>) | undefined;
}

/** Largest request body kept in memory so that a replay refused with 401 can be sent once more. */
export const RETRY_BODY_MAX = 64 * 1024;

/** The body to send: none, kept bytes (sendable twice), or the request stream (once). */
type Body = { kind: 'none' } | { kind: 'kept'; bytes: Buffer } | { kind: 'stream' };

/** Reads a body announced as at most RETRY_BODY_MAX bytes; larger or chunked bodies are streamed. */
async function bodyOf(req: IncomingMessage): Promise<Body> {
  if (bodiless(req)) {
    req.resume();
    return { kind: 'none' };
  }
  const length = Number(req.headers['content-length']);
  if (req.headers['transfer-encoding'] !== undefined || !Number.isSafeInteger(length) || length > RETRY_BODY_MAX) return { kind: 'stream' };
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return { kind: 'kept', bytes: Buffer.concat(chunks) };
}

/** A request without a body can be sent twice; one with a body has been streamed away. */
function bodiless(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
}

/** An error from a pooled keep-alive socket the backend closed just as we reused it. */
function staleSocket(error: unknown): boolean {
  const e = error as NodeJS.ErrnoException & { reusedSocket?: boolean };
  return e.reusedSocket === true && (e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.message === 'socket hang up');
}

/** One attempt: sends the request with `credential` and its body, and resolves with the response head. */
function send(req: IncomingMessage, options: ReplayOptions, credential: string, agent: http.Agent | https.Agent | false, body: Body): Promise<IncomingMessage> {
  const { target } = options;
  const client = target.protocol === 'https:' ? https : http;
  const upstream = client.request(target, { method: req.method, headers: replayRequestHeaders(req.headers, target, credential, options.header), agent, timeout: options.timeoutMs });
  upstream.on('timeout', () => upstream.destroy(new Error(`the backend did not answer within ${options.timeoutMs} ms`)));
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    upstream.once('response', resolve);
    upstream.once('error', (error) => reject(Object.assign(error, { reusedSocket: upstream.reusedSocket })));
  });
  const sending = body.kind === 'stream' ? pipeline(req, streamedBytesCounter(), upstream) : Promise.resolve(upstream.end(body.kind === 'kept' ? body.bytes : undefined));
  return Promise.all([answered, sending]).then(
    ([response]) => response,
    (error: unknown) => {
      upstream.destroy();
      throw error;
    },
  );
}

/** What a replay did, and why it failed when it did. */
export interface ReplayResult {
  outcome: ReplayOutcome;
  error?: string | undefined;
  /** The first replay got 401 with a cookie that had died, and the request was sent once more. */
  retried?: boolean | undefined;
}

/**
 * Sends `req` to the backend and streams the answer into `res`. Never throws. A bodiless request
 * that fails on a reused keep-alive socket (the backend closed it as we reused it) is sent once
 * more on a fresh connection, as nginx's proxy_next_upstream would.
 */
export async function replay(req: IncomingMessage, res: ServerResponse, options: ReplayOptions): Promise<ReplayResult> {
  let response: IncomingMessage;
  let retried = false;
  try {
    const body = await bodyOf(req);
    const attempt = async (cookie: string): Promise<IncomingMessage> => {
      try {
        return await send(req, options, cookie, options.agent, body);
      } catch (error) {
        if (body.kind === 'stream' || !staleSocket(error)) throw error;
        return send(req, options, cookie, false, body);
      }
    };
    response = await attempt(options.credential);
    if (response.statusCode === 401 && body.kind !== 'stream' && options.retryOn401) {
      // The replay's own challenge says whether its credential died or the request is refused.
      const challenge = response.headers['www-authenticate'];
      const cookie = await options.retryOn401(typeof challenge === 'string' && challenge.length <= MAX_CHALLENGE ? challenge : undefined);
      if (cookie !== undefined) {
        response.resume();
        retried = true;
        response = await attempt(cookie);
      }
    }
  } catch (error) {
    const reason = `replay to ${options.target.origin} failed: ${error instanceof Error ? error.message : String(error)}`;
    if (!res.headersSent) {
      // The cause names the backend: it goes to the log (see ReplayResult), not to the client.
      const body = JSON.stringify({ error: 'bad_gateway', reason: 'the backend did not answer the replayed request', ...(options.requestId ? { request_id: options.requestId } : {}) });
      res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    } else res.destroy();
    return { outcome: 'backend_error', error: reason };
  }
  res.writeHead(response.statusCode ?? 502, replayResponseHeaders(response.headers));
  try {
    await pipeline(response, streamedBytesCounter(), res);
  } catch (error) {
    res.destroy();
    return { outcome: 'backend_error', error: `streaming the backend's answer failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  return { outcome: response.statusCode === 401 ? 'unauthorized_again' : 'replayed', retried };
}
