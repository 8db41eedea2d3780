/**
 * Asking the backend whether a session cookie is still good: `GET /_session` with the cookie.
 *
 * CouchDB (couch_httpd_auth) and pouchdb-server answer 200 with `userCtx.name` null when the
 * cookie is expired or its HMAC no longer verifies, and with the user's name when it is alive:
 * an HMAC check, no password hash. On a live cookie they may also re-issue a fresh one in
 * Set-Cookie (CouchDB once 10% of the timeout has passed): a renewal without a login.
 * Couchbase Sync Gateway answers 401 ("Session Invalid") for a dead session instead.
 */
import http from 'node:http';
import https from 'node:https';
import { boundedGet } from './bounded-get.js';
import type { SessionConfig } from '../config/schema.js';
import { MAX_LOGIN_BODY_BYTES, caCertificates, sessionUrl } from './login.js';

/** What the backend said of a cookie. `unknown`: it said nothing usable (down, 5xx, not JSON). */
export type ProbeResult =
  | {
      state: 'alive';
      /** Raw Set-Cookie headers of the answer: a renewed session cookie, when the backend sent one. */
      setCookie: string[];
      serverDate: string | undefined;
      /** Local time the answer arrived. */
      receivedAt: Date;
    }
  | { state: 'dead'; reason: string }
  | { state: 'unknown'; reason: string };

/**
 * Each probe on a new connection: behind a layer-4 balancer a kept-alive connection sticks to one
 * node, and a probe must be free to meet any of them. Probes are rare (one per burst of 401s).
 */
const agent = { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };

/** Decides from a `/_session` answer (pure). `body` is the raw text; `cookieName` for messages. */
export function probeVerdict(status: number, body: string): { state: 'alive' | 'dead' | 'unknown'; reason: string } {
  if (status === 401) return { state: 'dead', reason: 'the backend answered 401 to the session cookie' };
  if (status !== 200) return { state: 'unknown', reason: `GET /_session answered ${status}` };
  let userCtx: unknown;
  try {
    userCtx = (JSON.parse(body) as { userCtx?: unknown }).userCtx;
  } catch {
    return { state: 'unknown', reason: 'GET /_session answered 200 without a JSON body' };
  }
  const name = typeof userCtx === 'object' && userCtx !== null ? (userCtx as { name?: unknown }).name : undefined;
  if (typeof name === 'string' && name !== '') return { state: 'alive', reason: 'the backend knows the session' };
  if (name === null) return { state: 'dead', reason: 'the backend no longer knows the session (userCtx.name is null)' };
  return { state: 'unknown', reason: 'GET /_session answered 200 without a userCtx.name' };
}

/** Where and how a probe asks: the URL, the header the credential travels in, how to read the answer. */
export interface ProbeTarget {
  url: URL;
  header: 'cookie' | 'authorization';
  /** The header's whole value (`AuthSession=…`, `Bearer …`). */
  value: string;
  /** For messages: `GET /_session`. */
  what: string;
  decide: (status: number, body: string) => { state: 'alive' | 'dead' | 'unknown'; reason: string };
  session: Pick<SessionConfig, 'name' | 'ca_file' | 'timeout'>;
  timeoutMs?: number;
}

/**
 * Sends one GET with the credential, reading at most MAX_LOGIN_BODY_BYTES of the answer. Never
 * throws for an answer or a network failure (those are `unknown`); reasons never quote the
 * credential or the backend's text. A `ca_file` that cannot be read throws ConfigError.
 */
export async function probeCredential(target: ProbeTarget): Promise<ProbeResult> {
  const { url, session, what } = target;
  const ca = caCertificates(session);
  let answer;
  try {
    answer = await boundedGet(url, {
      headers: { accept: 'application/json', [target.header]: target.value, 'user-agent': 'session-refresher' },
      agent,
      timeoutMs: target.timeoutMs ?? Math.min(session.timeout * 1000, 5000),
      maxBytes: MAX_LOGIN_BODY_BYTES,
      ca,
    });
  } catch (error) {
    const code = typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'ERR_UNKNOWN';
    return { state: 'unknown', reason: `${what} failed (${code})` };
  }
  if ('cut' in answer) return { state: 'unknown', reason: `${what} answered more than ${MAX_LOGIN_BODY_BYTES} bytes` };
  const verdict = target.decide(answer.status, answer.body);
  if (verdict.state !== 'alive') return { state: verdict.state, reason: verdict.reason };
  const raw = answer.headers['set-cookie'];
  return { state: 'alive', setCookie: raw ?? [], serverDate: answer.headers.date, receivedAt: new Date() };
}

/** `GET /_session` with `cookie` (`Name=value`): see probeVerdict. */
export async function probeSession(session: SessionConfig, cookie: string, timeoutMs = Math.min(session.timeout * 1000, 5000)): Promise<ProbeResult> {
  return probeCredential({ url: sessionUrl(session.url, session.session_path), header: 'cookie', value: cookie, what: `GET ${session.session_path ?? '/_session'}`, decide: probeVerdict, session, timeoutMs });
}

/**
 * Decides from the answer to a GET with a token (pure). 401: the token is refused. 200 with a
 * CouchDB `userCtx.name` of null: the backend reads it as anonymous (a dead credential on
 * CouchDB). Any other 2xx, or 403: the token was accepted (the path may forbid something, but
 * that is not about the token). Anything else (a 404 may come before any check) says nothing.
 */
export function tokenProbeVerdict(status: number, body: string): { state: 'alive' | 'dead' | 'unknown'; reason: string } {
  if (status === 401) return { state: 'dead', reason: 'the backend answered 401 to the credential' };
  if (status === 200) {
    const couch = probeVerdict(status, body);
    if (couch.state === 'dead') return couch;
    return { state: 'alive', reason: 'the backend accepted the credential' };
  }
  if ((status > 200 && status < 300) || status === 403) return { state: 'alive', reason: 'the backend accepted the credential' };
  return { state: 'unknown', reason: `the probe answered ${status}` };
}
