/**
 * `cloudant-iam`: IBM Cloudant with IBM Cloud IAM. The API key is traded at IAM's token endpoint
 * for an access token (`grant_type=urn:ibm:params:oauth:grant-type:apikey`; IAM answers
 * `access_token`, `refresh_token`, `token_type: Bearer`, `expires_in` of about 3600 and an
 * `expiration` epoch). Then, by `token_use`:
 *
 * - `bearer` (default): nginx sends `Authorization: Bearer <access token>`, as IBM documents for
 *   plain HTTP clients. A new token is another key exchange; nothing cheaper exists for the
 *   API-key grant.
 * - `cookie`: the token is posted once more to the account's `POST /_iam_session` (form field
 *   `access_token`, as IBM's Node.js client sends it; Cloudant takes JSON too) and nginx sends
 *   the `IAMSession` cookie Cloudant sets.
 *
 * Cloudant's 401s carry no RFC 6750 challenge (an expired token gets `{"error":"unauthorized",
 * "reason":"exp not in future"}`), so a 401 is judged by the probe, `GET probe_path`
 * (`/_session` by default), which answers the caller's `userCtx` for a live credential and 401
 * for a dead one. IAM refusing the key (400 with `errorCode` BXNIM0415E, or 401) is
 * CredentialsRejectedError (exit 77). No message holds the key, the token or the cookie.
 */
import type { Response } from 'got';
import { httpClient } from '../session/http-client.js';
import type { AnySessionConfig } from '../config/schema.js';
import { BackendUnavailableError, CookieRefusedError, CredentialsRejectedError, ProtocolError } from '../errors.js';
import { assertSafeCookieValue, pickSessionCookie, type SessionCookie } from '../session/cookie.js';
import { computeExpiry, type Expiry } from '../session/expiry.js';
import { requestWithoutLateEndError } from '../session/late-end-error.js';
import { MAX_LOGIN_BODY_BYTES, backendReason, boundedBody, classifyRequestError, displayUrl, tlsOptions, type Overflow } from '../session/login.js';
import { probeCredential, probeVerdict } from '../session/probe.js';
import { secretSpellings } from '../session/redact.js';
import { assertSafeAuthorization, bearerChallenge, expiryIn } from './authorization.js';
import type { Credential, CredentialKind } from './kind.js';
import { describeSource, readSecretLine, sessionSecret } from './secret.js';
import { type TokenAnswer, requestToken } from './token-endpoint.js';
import { tokenProbe } from './token-probe.js';

type CloudantIamSession = Extract<AnySessionConfig, { kind: 'cloudant-iam' }>;

/** IBM Cloud IAM's grant type for an API key. */
export const IAM_APIKEY_GRANT = 'urn:ibm:params:oauth:grant-type:apikey';
/** IAM's `errorCode` for a key it does not know (deleted, mistyped, of another account). */
export const IAM_KEY_NOT_FOUND = 'BXNIM0415E';
/** The cookie Cloudant's `POST /_iam_session` sets. */
export const IAM_SESSION_COOKIE = 'IAMSession';

/** The token request's form (RFC 6749 style; IAM takes no client authentication for this grant). */
export function iamTokenForm(apiKey: string): Record<string, string> {
  return { grant_type: IAM_APIKEY_GRANT, apikey: apiKey };
}

/** A URL for `path` under the session's `url`, keeping any path prefix `url` has. */
export function accountUrl(base: string, path: string): URL {
  const url = new URL(base);
  return new URL(`${url.pathname.replace(/\/+$/, '')}${path}`, url.origin);
}

/** What `POST /_iam_session` answered, as far as deciding needs. */
export interface IamSessionResponse {
  status: number;
  setCookie: readonly string[];
  body: string;
  serverDate: string | undefined;
  receivedAt: Date;
  attempts: number;
}

/**
 * The IAMSession cookie from the answer to `POST /_iam_session` and its expiry (pure). The
 * expiry is the cookie's own (Max-Age, else Expires corrected by the Date header); a cookie that
 * says neither lives as long as the token it was made from (`tokenSeconds`). Throws a
 * RefresherError for every other answer; `secrets` are removed from anything quoted.
 */
export function iamSessionCredential(answer: IamSessionResponse, where: string, tokenSeconds: number, secrets: readonly string[]): Credential {
  const { status } = answer;
  if (status >= 200 && status < 300) {
    let cookie: SessionCookie;
    try {
      cookie = pickSessionCookie(answer.setCookie, IAM_SESSION_COOKIE);
    } catch (error) {
      if (error instanceof ProtocolError) throw new ProtocolError(`${where} answered ${status} but set no ${IAM_SESSION_COOKIE} cookie; is url a Cloudant account?`);
      throw error;
    }
    const expiry: Expiry =
      cookie.maxAge !== undefined || cookie.expires !== undefined
        ? computeExpiry({ cookie, username: '', lifetime: tokenSeconds, now: answer.receivedAt, serverDate: answer.serverDate, cookieName: IAM_SESSION_COOKIE })
        : expiryIn(tokenSeconds, answer.receivedAt, 'expires_in');
    return { value: `${IAM_SESSION_COOKIE}=${cookie.value}`, expiry };
  }
  const reason = backendReason(answer.body, secrets);
  const quoted = reason ? `: "${reason}"` : '';
  if (status === 401 || status === 403) {
    throw new CredentialsRejectedError(`${where} refused the IAM access token (${status}${quoted}); IAM accepted the API key, so check that its service ID or user has a role on this Cloudant instance`);
  }
  if (status === 404 || status === 405 || status === 410) {
    throw new ProtocolError(`${where} answered ${status}${quoted}: this account offers no IAM session cookies; use token_use: bearer`);
  }
  if (status >= 500) throw new BackendUnavailableError(`${where} answered ${status}${quoted} after ${answer.attempts} attempt(s); the Cloudant account is failing, try again later`);
  throw new ProtocolError(`${where} answered ${status}${quoted}; Cloudant's POST /_iam_session answers 200 with an ${IAM_SESSION_COOKIE} cookie`);
}

/** Posts the access token to `/_iam_session`; network failures become RefresherErrors. */
async function postIamSession(session: CloudantIamSession, token: string): Promise<IamSessionResponse> {
  const url = accountUrl(session.url, '/_iam_session');
  const got = await httpClient();
  const overflow: Overflow = {};
  let response: Response<string>;
  try {
    response = await boundedBody(
      got.post(url, {
        form: { access_token: token },
        headers: { accept: 'application/json', 'user-agent': 'session-refresher' },
        throwHttpErrors: false,
        followRedirect: false,
        timeout: { request: session.timeout * 1000 },
        retry: { limit: session.retries, methods: ['POST'], statusCodes: [502, 503, 504], backoffLimit: 5000 },
        request: requestWithoutLateEndError,
        ...tlsOptions(session),
        decompress: false,
      }),
      overflow,
    );
  } catch (error) {
    if (overflow.cut) throw new CookieRefusedError(`${displayUrl(url)} sent an answer over the ${MAX_LOGIN_BODY_BYTES} bytes read; refused, nothing written`, { cause: error });
    throw classifyRequestError(error, url, session);
  }
  const raw = response.headers['set-cookie'];
  return { status: response.statusCode, setCookie: raw === undefined ? [] : [raw].flat(), body: response.body, serverDate: response.headers.date, receivedAt: new Date(), attempts: response.retryCount + 1 };
}

/** The I/O of the kind, swappable in tests. */
export interface CloudantIamIo {
  readApiKey: (session: CloudantIamSession) => Promise<string>;
  requestToken: typeof requestToken;
  postIamSession: (session: CloudantIamSession, token: string) => Promise<IamSessionResponse>;
}

const defaultIo: CloudantIamIo = { readApiKey: (s) => readSecretLine(sessionSecret(s)), requestToken, postIamSession };

/** The cloudant-iam kind for `session`. */
export function cloudantIam(session: CloudantIamSession, io: CloudantIamIo = defaultIo): CredentialKind {
  const bearer = session.token_use === 'bearer';
  const label = bearer ? 'the IAM access token' : `the Cloudant ${IAM_SESSION_COOKIE} cookie`;
  const iamOrigin = new URL(session.iam_url).origin;

  const accessToken = async (): Promise<{ answer: TokenAnswer; secrets: string[] }> => {
    const apiKey = await io.readApiKey(session);
    const secrets = secretSpellings('', apiKey);
    const answer = await io.requestToken({
      url: session.iam_url,
      form: iamTokenForm(apiKey),
      session,
      secrets,
      who: `the API key from ${describeSource(sessionSecret(session))}`,
      rejectedCodes: [IAM_KEY_NOT_FOUND],
    });
    // Whitelisted here too in cookie mode: the token goes into a request, and into no message.
    assertSafeAuthorization(`Bearer ${answer.accessToken}`, 'Bearer', `the access token from ${iamOrigin}`);
    return { answer, secrets: [...secrets, answer.accessToken] };
  };

  const probeUrl = accountUrl(session.url, session.probe_path);
  return {
    kind: 'cloudant-iam',
    header: bearer ? 'authorization' : 'cookie',
    label,
    async obtain() {
      const { answer, secrets } = await accessToken();
      const tokenSeconds = answer.expiresIn ?? session.lifetime;
      if (bearer) return { value: `Bearer ${answer.accessToken}`, expiry: expiryIn(tokenSeconds, answer.receivedAt, answer.expiresIn === undefined ? 'lifetime' : 'expires_in') };
      const where = displayUrl(accountUrl(session.url, '/_iam_session'));
      return iamSessionCredential(await io.postIamSession(session, answer.accessToken), where, tokenSeconds, secrets);
    },
    probe: bearer
      ? tokenProbe(session)
      : (current) => probeCredential({ url: probeUrl, header: 'cookie', value: current, what: `GET ${session.probe_path}`, decide: probeVerdict, session }),
    // Cloudant's 401s name no error (see above); a Bearer challenge, should one come, is still read.
    challenge: bearer ? bearerChallenge : () => 'unknown',
    assertSafe(value) {
      if (bearer) return assertSafeAuthorization(value, 'Bearer', label);
      const prefix = `${IAM_SESSION_COOKIE}=`;
      if (!value.startsWith(prefix)) throw new CookieRefusedError(`the value for the include is not an ${IAM_SESSION_COOKIE} cookie; refused, nothing written`);
      assertSafeCookieValue(value.slice(prefix.length), IAM_SESSION_COOKIE);
    },
    describe: () => ({ kind: 'cloudant-iam', url: session.url, iam_url: session.iam_url, token_use: session.token_use }),
  };
}
