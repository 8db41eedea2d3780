/**
 * `couchdb-session`: CouchDB's `POST /_session` with a username and password, and the session
 * cookie it sets (AuthSession). Renewed without the password when `GET /_session` re-issues the
 * cookie (an HMAC check on the backend, where a login is a PBKDF2 hash on CouchDB 3.4+); the same
 * request tells a dead session from a 401 about authorization.
 */
import type { SessionConfig } from '../config/schema.js';
import { CookieRefusedError, ProtocolError } from '../errors.js';
import { assertSafeCookieValue, pickSessionCookie, type SessionCookie } from '../session/cookie.js';
import { computeExpiry } from '../session/expiry.js';
import { login, type LoginResponse } from '../session/login.js';
import { readPassword } from '../session/password.js';
import { probeSession, type ProbeResult } from '../session/probe.js';
import type { Credential, CredentialKind, Renewal } from './kind.js';

/** The I/O of the kind, swappable in tests. */
export interface CouchIo {
  login: (session: SessionConfig, password: string) => Promise<LoginResponse>;
  readPassword: (session: SessionConfig) => Promise<string>;
  probe: (session: SessionConfig, cookie: string) => Promise<ProbeResult>;
}

const defaultIo: CouchIo = { login, readPassword: (s) => readPassword(s), probe: (s, cookie) => probeSession(s, cookie) };

/** The couchdb-session kind for `session`. */
export function couchdbSession(session: SessionConfig, io: CouchIo = defaultIo): CredentialKind {
  const credential = (cookie: SessionCookie, answer: { receivedAt: Date; serverDate: string | undefined }): Credential => ({
    value: `${session.cookie_name}=${cookie.value}`,
    expiry: computeExpiry({ cookie, username: session.username, lifetime: session.lifetime, now: answer.receivedAt, serverDate: answer.serverDate, cookieName: session.cookie_name }),
  });
  return {
    kind: 'couchdb-session',
    header: 'cookie',
    label: `the backend's ${session.cookie_name} cookie`,
    async obtain() {
      const password = await io.readPassword(session);
      const response = await io.login(session, password);
      return credential(pickSessionCookie(response.setCookie, session.cookie_name), response);
    },
    async renew(current: string): Promise<Renewal> {
      const answer = await io.probe(session, current);
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
      return { kind: 'renewed', credential: credential(cookie, answer) };
    },
    probe: (current) => io.probe(session, current),
    challenge: () => 'unknown',
    assertSafe(value) {
      const prefix = `${session.cookie_name}=`;
      if (!value.startsWith(prefix)) throw new CookieRefusedError(`the value for the include is not a ${session.cookie_name} cookie; refused, nothing written`);
      assertSafeCookieValue(value.slice(prefix.length), session.cookie_name);
    },
    describe: () => ({ kind: 'couchdb-session', url: session.url, username: session.username, cookie_name: session.cookie_name }),
  };
}
