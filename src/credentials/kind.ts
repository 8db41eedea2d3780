/**
 * The interface every credential kind implements. The refresh pipeline, the include, the daemon
 * and the fallback know only this: how to obtain a credential, how to renew it cheaply when the
 * scheme allows, what the backend says of it, and which header carries it. One file per kind
 * sits beside this one; `factory.ts` picks one from a session's `kind`.
 */
import type { Expiry } from '../session/expiry.js';

/** The request header a credential travels in; the snippet sends exactly this one. */
export type CredentialHeader = 'cookie' | 'authorization';

/** A credential ready for the include. */
export interface Credential {
  /**
   * The header's whole value as nginx sends it (`AuthSession=…`, `Bearer …`, `Basic …`). It has
   * passed the kind's whitelist (`assertSafe`), so it holds nothing nginx would interpret.
   */
  value: string;
  /** When it was issued and when it stops working, in local clock time. */
  expiry: Expiry;
}

/** What the backend said of a credential. `unknown`: it said nothing usable (no probe, down, 5xx). */
export type CredentialCheck = { state: 'alive' } | { state: 'dead'; reason: string } | { state: 'unknown'; reason: string };

/** What a 401's challenge says: the credential is dead, the request is not allowed, or nothing. */
export type Challenge = 'dead' | 'authorization' | 'unknown';

/** What a cheap renewal of the current credential gave: a new one, the same one confirmed, or why not. */
export type Renewal = { kind: 'renewed'; credential: Credential } | { kind: 'unchanged' } | { kind: 'declined'; reason: string; dead: boolean };

/** One credential kind bound to one session's settings. */
export interface CredentialKind {
  /** The `kind` value of the configuration, e.g. `couchdb-session`. */
  readonly kind: string;
  /** The header the credential travels in. */
  readonly header: CredentialHeader;
  /** The credential in words, for messages: "the backend's AuthSession cookie", "the access token". */
  readonly label: string;
  /**
   * Obtains a new credential with the session's long-term secret (a login, a token request, a
   * local signature). Throws a RefresherError: CredentialsRejectedError (exit 77) when the secret
   * is refused, BackendUnavailableError, ProtocolError, CookieRefusedError (exit 65) for a value
   * outside the whitelist, ConfigError for a secret source that cannot be read. No message ever
   * holds the secret or the credential.
   */
  obtain(): Promise<Credential>;
  /**
   * Renews `current` (the header value in the include) without the long-term secret, when the
   * scheme can (CouchDB re-issues its cookie on `GET /_session`). Absent: the scheme cannot.
   */
  renew?: ((current: string) => Promise<Renewal>) | undefined;
  /**
   * Asks the backend whether `current` still works (CouchDB's `GET /_session`, or a configured
   * `probe_path`). `unknown` when it cannot tell (backend down, an answer it cannot read).
   * Absent: the scheme has no probe; then only the 401's challenge can tell, and without one a
   * 401 costs at most one new credential per `daemon.min_refresh_interval`.
   */
  probe?: ((current: string) => Promise<CredentialCheck>) | undefined;
  /**
   * What the 401's `WWW-Authenticate` (passed on by nginx) says: `dead` when it names the
   * credential as the problem (RFC 6750 `error="invalid_token"`), `authorization` when it names
   * the request instead (`insufficient_scope`), `unknown` when it says neither.
   */
  challenge(wwwAuthenticate: string | undefined): Challenge;
  /** Throws CookieRefusedError (exit 65) unless `value` may be written into nginx configuration. */
  assertSafe(value: string): void;
  /** What to log and show in `status` about this session's credential: never a secret. */
  describe(): Record<string, string>;
}
