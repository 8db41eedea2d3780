/**
 * One credential kind's real (or, where none can run here, scripted) backend, as the contract
 * suite (test/integration/credential-contract.test.ts) needs it: the session keys that use it,
 * a path that answers 200 with a live credential, a way to kill every credential it issued, and
 * a count of the credentials it issued. One file per kind beside this one.
 */
export interface KindBackend {
  /** The URL nginx proxies to and the session's `url`. */
  url: string;
  /** The session's kind keys (`kind` and its own keys; secret sources point into the test's dir). */
  session: Record<string, unknown>;
  /** Environment the CLI and the daemon need (secret sources read from the environment). */
  env: Record<string, string>;
  /** Strings that must appear in no output: the long-term secrets. */
  secrets: string[];
  /** A GET path through nginx that answers 200 with a live credential. */
  okPath: string;
  /** Makes every credential issued so far dead at the backend (a secret or key rotation). */
  invalidate(): Promise<void>;
  /**
   * Credentials the backend (or its token endpoint) has issued so far; undefined for a kind
   * that needs no request to make one (jwt).
   */
  issued(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** How to start one kind's backend. */
export interface KindHarness {
  /** The kind under test, and a word on the backend (`couchdb-session on pouchdb-server`). */
  kind: string;
  title: string;
  /** The include's variable for this kind. */
  variable: string;
  /** The backend re-issues a live credential without the long-term secret (CouchDB's `GET /_session`). */
  renews?: boolean;
  /**
   * A GET path a live credential is refused on (the backend's 401 or 403 about the request, not
   * the credential); absent when the backend has none (pouchdb-server for its admin).
   */
  forbiddenPath?: string;
  /** `dir` is a private directory of the test for secret files. */
  start(dir: string): Promise<KindBackend>;
}
