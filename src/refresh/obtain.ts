/**
 * Getting a new session cookie: renew the current one when the backend re-issues it on
 * `GET /_session` (an HMAC check on the backend), else log in with the password (a PBKDF2 hash
 * on CouchDB 3.4+). Both end in a whitelisted cookie and its expiry.
 */
import type { SessionConfig } from '../config/schema.js';
import { ProtocolError } from '../errors.js';
import type { Logger } from '../log.js';
import { pickSessionCookie, type SessionCookie } from '../session/cookie.js';
import { computeExpiry, type Expiry } from '../session/expiry.js';
import type { LoginResponse } from '../session/login.js';
import type { ProbeResult } from '../session/probe.js';

/** How the cookie in the include was obtained. */
export type ObtainedBy = 'login' | 'renewal';

/** A cookie ready to render, with how it was obtained. */
export interface Obtained {
  cookie: SessionCookie;
  expiry: Expiry;
  by: ObtainedBy;
  /** The backend said the cookie being replaced is dead: nginx must get the new one without delay. */
  replacesDead?: boolean;
}

/** The I/O `obtain` uses. */
export interface ObtainDeps {
  login: (session: SessionConfig, password: string) => Promise<LoginResponse>;
  readPassword: (session: SessionConfig) => Promise<string>;
  probe: (session: SessionConfig, cookie: string) => Promise<ProbeResult>;
}

/** The outcome of a renewal attempt: a new cookie, the same one confirmed alive, or why not. */
export type Renewal = { kind: 'renewed'; cookie: SessionCookie; expiry: Expiry } | { kind: 'unchanged' } | { kind: 'declined'; reason: string; dead: boolean };

/**
 * Asks the backend to renew `current` (`Name=value`). A live session whose answer carries a new
 * cookie is renewed (the new value passes the same whitelist as a login's, or the refusal is
 * thrown); the same value back means alive and unchanged; anything else declines, with why.
 */
export async function renew(session: SessionConfig, current: string, deps: Pick<ObtainDeps, 'probe'>): Promise<Renewal> {
  const answer = await deps.probe(session, current);
  if (answer.state !== 'alive') return { kind: 'declined', reason: answer.reason, dead: answer.state === 'dead' };
  let cookie: SessionCookie;
  try {
    cookie = pickSessionCookie(answer.setCookie, session.cookie_name);
  } catch (error) {
    // No cookie in the answer: the session is alive but the backend did not re-issue it.
    if (error instanceof ProtocolError) return { kind: 'declined', reason: 'the backend did not re-issue the cookie', dead: false };
    throw error;
  }
  if (`${session.cookie_name}=${cookie.value}` === current) return { kind: 'unchanged' };
  const expiry = computeExpiry({ cookie, username: session.username, lifetime: session.lifetime, now: answer.receivedAt, serverDate: answer.serverDate, cookieName: session.cookie_name });
  return { kind: 'renewed', cookie, expiry };
}

/** Logs in with the password and returns the whitelisted cookie and its expiry. */
export async function logIn(session: SessionConfig, deps: ObtainDeps): Promise<Obtained> {
  const password = await deps.readPassword(session);
  const response = await deps.login(session, password);
  const cookie = pickSessionCookie(response.setCookie, session.cookie_name);
  const expiry = computeExpiry({ cookie, username: session.username, lifetime: session.lifetime, now: response.receivedAt, serverDate: response.serverDate, cookieName: session.cookie_name });
  return { cookie, expiry, by: 'login' };
}

/**
 * Renews `current` when given and the backend allows it, else logs in. Returns undefined when
 * the backend confirmed the current cookie and gave it back unchanged (nothing to write).
 */
export async function obtain(session: SessionConfig, current: string | undefined, deps: ObtainDeps, log: Logger): Promise<Obtained | undefined> {
  if (current !== undefined) {
    const renewal = await renew(session, current, deps);
    if (renewal.kind === 'renewed') return { cookie: renewal.cookie, expiry: renewal.expiry, by: 'renewal' };
    if (renewal.kind === 'unchanged') return undefined;
    log.info({ reason: renewal.reason }, 'renewal declined; logging in');
    if (renewal.dead) return { ...(await logIn(session, deps)), replacesDead: true };
  }
  return logIn(session, deps);
}
