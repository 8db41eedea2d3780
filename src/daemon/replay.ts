/**
 * Replaying a rejected request to the backend with the fresh cookie: the original method, path
 * and query, end-to-end headers and the body streamed through; the backend's status, headers
 * (minus hop-by-hop and Set-Cookie) and body streamed back. The target is always the session's
 * configured backend, never a host taken from the request.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';

/** RFC 9110 hop-by-hop headers, plus proxy headers that must not travel on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Headers the fallback endpoint receives from nginx that are for it alone. */
export const SESSION_HEADER = 'x-session-refresher-session';
export const GENERATION_HEADER = 'x-session-refresher-generation';

export type ReplayOutcome = 'replayed' | 'unauthorized_again' | 'backend_error';

/** End-to-end request headers for the replay: no hop-by-hop, no client credentials, our cookie. */
export function replayRequestHeaders(incoming: IncomingHttpHeaders, target: URL, cookie: string): OutgoingHttpHeaders {
  const listed = connectionListed(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    if (name === 'host' || name === 'cookie' || name === 'authorization' || name === SESSION_HEADER || name === GENERATION_HEADER) continue;
    out[name] = value;
  }
  out.host = target.host;
  out.cookie = cookie;
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
 * True when a request path has a "." or ".." segment, also spelled %2e or with backslashes:
 * URL normalisation would resolve it, and ".." could climb out of the backend's path prefix.
 */
export function hasDotSegment(requestPath: string): boolean {
  const q = requestPath.indexOf('?');
  // The URL parser drops tabs and newlines, so "/.\t./" would still climb: drop them first too.
  const path = (q < 0 ? requestPath : requestPath.slice(0, q)).replace(/[\t\n\r]/g, '').replace(/%2e/gi, '.').replace(/\\|%5c/gi, '/');
  return /(^|\/)\.{1,2}(\/|$)/.test(path);
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
  cookie: string;
  timeoutMs: number;
  agent: http.Agent | https.Agent;
}

/** Sends `req` to the backend and streams the answer into `res`. Never throws. */
export async function replay(req: IncomingMessage, res: ServerResponse, options: ReplayOptions): Promise<ReplayOutcome> {
  const { target } = options;
  const client = target.protocol === 'https:' ? https : http;
  const upstream = client.request(target, { method: req.method, headers: replayRequestHeaders(req.headers, target, options.cookie), agent: options.agent, timeout: options.timeoutMs });
  upstream.on('timeout', () => upstream.destroy(new Error(`the backend did not answer within ${options.timeoutMs} ms`)));
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    upstream.once('response', resolve);
    upstream.once('error', reject);
  });
  try {
    const [response] = await Promise.all([answered, pipeline(req, upstream)]);
    res.writeHead(response.statusCode ?? 502, replayResponseHeaders(response.headers));
    await pipeline(response, res);
    return response.statusCode === 401 ? 'unauthorized_again' : 'replayed';
  } catch (error) {
    upstream.destroy();
    if (!res.headersSent) {
      const body = JSON.stringify({ error: 'bad_gateway', reason: `replay to ${target.origin} failed: ${error instanceof Error ? error.message : String(error)}` });
      res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    } else res.destroy();
    return 'backend_error';
  }
}
