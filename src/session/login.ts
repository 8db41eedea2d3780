/**
 * Logging in to a CouchDB-style `POST /_session` with got, and classifying every way it fails.
 *
 * The request is form-encoded `name`/`password`, as CouchDB's own replicator sends it. A 401 that
 * carries WWW-Authenticate (a backend with `require_valid_user`) is tried once more with Basic
 * credentials. Network errors, timeouts and 502/503/504 are retried with backoff by got; a
 * rejected password never is.
 */
import { rootCertificates } from 'node:tls';
import type { CancelableRequest, Response } from 'got';
import { httpClient, isRequestError } from './http-client.js';
import { BackendUnavailableError, CookieRefusedError, ConfigError, CredentialsRejectedError, ProtocolError, describeSystemError } from '../errors.js';
import type { SessionConfig } from '../config/schema.js';
import { requestWithoutLateEndError } from './late-end-error.js';
import { UnsafeFileError, readSmallFileSync } from '../small-file.js';
import { whitespaceHint } from './password.js';
import { redact, secretSpellings } from './redact.js';

/** What a successful login returns: the raw Set-Cookie headers and the backend's Date. */
export interface LoginResponse {
  setCookie: string[];
  serverDate: string | undefined;
  /** Local time the response arrived. */
  receivedAt: Date;
}

/**
 * The `/_session` URL for a backend base URL, keeping any path prefix (https://h/couch/ ->
 * /couch/_session); with `path` (a session's `session_path`), that path under the prefix.
 */
export function sessionUrl(base: string, path?: string): URL {
  const url = new URL(base);
  if (path !== undefined) return new URL(`${url.pathname.replace(/\/+$/, '')}${path}`, url.origin);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return new URL('_session', url);
}

/** A URL fit for messages: no credentials, no query. */
export function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** Logs in; throws a RefresherError subclass on every failure. The password never appears in errors. */
export async function login(session: SessionConfig, password: string): Promise<LoginResponse> {
  const url = sessionUrl(session.url, session.session_path);
  const got = await httpClient();
  const tls = tlsOptions(session);
  const overflow: Overflow = {};
  const attempt = (basic: boolean): Promise<Response<string>> =>
    boundedBody(got.post(url, {
      // CouchDB takes either; Couchbase Sync Gateway's `POST /{db}/_session` takes JSON.
      ...(session.login_format === 'json' ? { json: { name: session.username, password } } : { form: { name: session.username, password } }),
      headers: {
        accept: 'application/json',
        'user-agent': 'session-refresher',
        ...(basic ? { authorization: `Basic ${Buffer.from(`${session.username}:${password}`).toString('base64')}` } : {}),
      },
      throwHttpErrors: false,
      followRedirect: false,
      timeout: { request: session.timeout * 1000 },
      retry: { limit: session.retries, methods: ['POST'], statusCodes: [502, 503, 504], backoffLimit: 5000 },
      // One error per failed attempt, the real one, on every Node.js (see late-end-error.ts).
      request: requestWithoutLateEndError,
      ...tls,
      // Compressed bytes would slip past the body cap: ask for none, and do not inflate any.
      decompress: false,
    }), overflow);

  let response: Response<string>;
  try {
    response = await attempt(false);
    if (response.statusCode === 401 && response.headers['www-authenticate']) response = await attempt(true);
  } catch (error) {
    if (overflow.cut) throw bodyTooLarge(url, overflow.cut, error);
    throw classifyRequestError(error, url, session);
  }
  return interpret(response, url, session, password);
}

/**
 * Largest login response body read. A /_session answer is a few hundred bytes; reading on would
 * let a backend fill the daemon's memory (a body is buffered whole) or never end.
 */
export const MAX_LOGIN_BODY_BYTES = 64 * 1024;

/** Set by boundedBody when it cancelled a request: the size the backend announced, if that was the reason. */
export interface Overflow {
  cut?: { announced: number | undefined };
}

/**
 * Cancels `request` as soon as its response announces (Content-Length) or delivers more than
 * MAX_LOGIN_BODY_BYTES; the socket is destroyed and what was read is dropped. `overflow` says
 * why the request then rejects.
 */
export function boundedBody<T>(request: CancelableRequest<T>, overflow: Overflow): CancelableRequest<T> {
  const stop = (announced: number | undefined) => {
    if (overflow.cut) return;
    overflow.cut = { announced };
    request.cancel();
  };
  // The first progress event comes with the response head; `total` is its Content-Length.
  request.on('downloadProgress', (progress: { transferred: number; total?: number | undefined }) => {
    if (progress.total !== undefined && progress.total > MAX_LOGIN_BODY_BYTES) stop(progress.total);
    else if (progress.transferred > MAX_LOGIN_BODY_BYTES) stop(undefined);
  });
  return request;
}

/** The refusal of a response body over MAX_LOGIN_BODY_BYTES. */
export function bodyTooLarge(url: URL, cut: NonNullable<Overflow['cut']>, cause: unknown): CookieRefusedError {
  const what = cut.announced === undefined ? `sent a login response body over the ${MAX_LOGIN_BODY_BYTES} bytes read` : `announced a login response body of ${cut.announced} bytes, over the ${MAX_LOGIN_BODY_BYTES} bytes read`;
  return new CookieRefusedError(`${displayUrl(url)} ${what}; a CouchDB-style /_session answers a few hundred bytes; refused, nothing written`, { cause });
}

/** The https options for a session: its `ca_file` trusted beside the system's CAs. */
export function tlsOptions(session: Pick<SessionConfig, 'name' | 'ca_file'>): { https?: { certificateAuthority: string[] } } {
  const ca = caCertificates(session);
  return ca ? { https: { certificateAuthority: ca } } : {};
}

/** Node's bundled authorities plus the session's `ca_file`, or undefined without one. Throws ConfigError when the file cannot be read. */
export function caCertificates(session: Pick<SessionConfig, 'name' | 'ca_file'>): string[] | undefined {
  return session.ca_file ? [...rootCertificates, readCa(session.ca_file, session.name)] : undefined;
}
/** Largest CA bundle read (the system's whole bundle is about 200 KiB). */
const MAX_CA_FILE_BYTES = 1024 * 1024;

function readCa(path: string, name: string): string {
  let bytes: Buffer | undefined;
  try {
    bytes = readSmallFileSync(path, { maxBytes: MAX_CA_FILE_BYTES, followLinks: true });
  } catch (error) {
    const why = error instanceof UnsafeFileError ? error.reason : describeSystemError(error);
    throw new ConfigError([`sessions (${name}).ca_file: cannot read ${path}: ${why}`], 'ca_file');
  }
  if (bytes === undefined) throw new ConfigError([`sessions (${name}).ca_file: cannot read ${path}: ENOENT: no such file or directory`], 'ca_file');
  return bytes.toString('utf8');
}

function interpret(response: Response<string>, url: URL, session: SessionConfig, password: string): LoginResponse {
  const status = response.statusCode;
  const where = displayUrl(url);
  if (status >= 200 && status < 300) {
    const raw = response.headers['set-cookie'];
    return { setCookie: raw === undefined ? [] : [raw].flat(), serverDate: response.headers.date, receivedAt: new Date() };
  }
  const reason = backendReason(response.body, secretSpellings(session.username, password));
  const quoted = reason ? `: "${reason}"` : '';
  if (status === 401 || status === 403) {
    const hint = whitespaceHint(password);
    throw new CredentialsRejectedError(`${where} rejected the login for user "${session.username}" (${status}${quoted}); ${hint ?? 'check the password source and the account on the backend'}`);
  }
  if (status === 404) throw new ProtocolError(`${where} answered 404: this backend has no /_session; check url (the backend's base URL)`);
  if (status >= 500) throw new BackendUnavailableError(`${where} answered ${status}${quoted} after ${response.retryCount + 1} attempt(s); the backend is failing, try again later`);
  throw new ProtocolError(`${where} answered ${status}${quoted}; a CouchDB-style /_session answers 200 or 401`);
}

/** Longest backend reason quoted in a message, in characters. */
export const MAX_REASON_LENGTH = 200;

/**
 * The backend's `reason` (or `error`) from a JSON body, printable and short, with every spelling
 * of the secrets removed first (see redact.ts): a backend may echo the request it was sent.
 */
export function backendReason(body: string, secrets: readonly string[]): string {
  let text = '';
  try {
    const json = JSON.parse(body) as { reason?: unknown; error?: unknown };
    text = typeof json.reason === 'string' ? json.reason : typeof json.error === 'string' ? json.error : '';
  } catch {
    return '';
  }
  text = redact(text, secrets);
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  return text.length > MAX_REASON_LENGTH ? `${text.slice(0, MAX_REASON_LENGTH)}…` : text;
}

/**
 * The RefresherError for a request that got no usable answer: a malformed response is refused
 * (exit 65), a timeout or a network error means the server is unavailable (exit 69).
 */
export function classifyRequestError(error: unknown, url: URL, session: Pick<SessionConfig, 'timeout'>): Error {
  if (error instanceof ConfigError) return error;
  const where = displayUrl(url);
  const code = isRequestError(error) ? error.code : undefined;
  if (code?.startsWith('HPE_')) {
    return new CookieRefusedError(`${where} sent a malformed HTTP response (${code}); refused, nothing written`, { cause: error });
  }
  const attempts = isRequestError(error) ? error.request?.retryCount ?? 0 : 0;
  if (code === 'ETIMEDOUT') {
    return new BackendUnavailableError(`${where} did not answer within ${session.timeout}s (${attempts + 1} attempt(s)); check the backend, or raise timeout`, { cause: error });
  }
  const detail = error instanceof Error ? describeSystemError(error) : String(error);
  const tlsHint = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code ?? '') ? '; check ca_file' : '';
  return new BackendUnavailableError(`cannot reach ${where} (${detail}, ${attempts + 1} attempt(s))${tlsHint}; is the backend up?`, { cause: error });
}
