/**
 * A token request to an OAuth2-style token endpoint (RFC 6749 section 5): a form POST, a JSON
 * answer with `access_token`, `token_type` and `expires_in`, or an error object. Shared by the
 * kinds that trade a long-term secret for a Bearer token (oauth2-client-credentials,
 * cloudant-iam). Every failure is a RefresherError whose message holds neither secret nor token.
 */
import type { Response } from 'got';
import { httpClient } from '../session/http-client.js';
import { BackendUnavailableError, CookieRefusedError, CredentialsRejectedError, ProtocolError } from '../errors.js';
import { requestWithoutLateEndError } from '../session/late-end-error.js';
import { MAX_LOGIN_BODY_BYTES, boundedBody, classifyRequestError, displayUrl, tlsOptions, type Overflow } from '../session/login.js';
import { redact } from '../session/redact.js';

/** A token endpoint's successful answer, checked for shape (not yet for the whitelist). */
export interface TokenAnswer {
  accessToken: string;
  /** Seconds, when the answer says. */
  expiresIn: number | undefined;
  /** Local time the answer arrived. */
  receivedAt: Date;
}

/** One token request. */
export interface TokenRequest {
  url: string;
  form: Record<string, string>;
  headers?: Record<string, string>;
  /** Session settings the request follows. */
  session: { name: string; ca_file?: string | undefined; timeout: number; retries: number };
  /** Every spelling of the secrets sent, removed from anything quoted from the answer. */
  secrets: readonly string[];
  /** Who is asking, for messages: `client "proxy"`. */
  who: string;
  /**
   * Error codes, besides RFC 6749's, with which this endpoint says a 400 is about the secret
   * itself (IBM Cloud IAM: `errorCode` BXNIM0415E, "Provided API key could not be found").
   */
  rejectedCodes?: readonly string[];
}

/** Error codes (RFC 6749 5.2) that mean the client's own credentials were refused. */
const REJECTED = new Set(['invalid_client', 'unauthorized_client', 'invalid_grant', 'access_denied']);

/** POSTs the form and returns the token; throws a RefresherError for every other outcome. */
export async function requestToken(request: TokenRequest): Promise<TokenAnswer> {
  const url = new URL(request.url);
  const got = await httpClient();
  const overflow: Overflow = {};
  let response: Response<string>;
  try {
    response = await boundedBody(
      got.post(url, {
        form: request.form,
        headers: { accept: 'application/json', 'user-agent': 'session-refresher', ...request.headers },
        throwHttpErrors: false,
        followRedirect: false,
        timeout: { request: request.session.timeout * 1000 },
        retry: { limit: request.session.retries, methods: ['POST'], statusCodes: [502, 503, 504], backoffLimit: 5000 },
        request: requestWithoutLateEndError,
        ...tlsOptions(request.session),
        decompress: false,
      }),
      overflow,
    );
  } catch (error) {
    if (overflow.cut) throw new CookieRefusedError(`${displayUrl(url)} sent a token response over the ${MAX_LOGIN_BODY_BYTES} bytes read; refused, nothing written`, { cause: error });
    throw classifyRequestError(error, url, request.session);
  }
  return interpretTokenResponse(response.statusCode, response.body, displayUrl(url), request, new Date(), response.retryCount + 1);
}

/** Longest quoted error text, in characters. */
const MAX_QUOTED = 200;

/** The answer's `error` and `error_description`, printable, short, with the secrets removed. */
export function tokenErrorText(body: string, secrets: readonly string[]): { code: string | undefined; text: string } {
  let json: { error?: unknown; error_description?: unknown; errorCode?: unknown; errorMessage?: unknown };
  try {
    json = JSON.parse(body) as typeof json;
  } catch {
    return { code: undefined, text: '' };
  }
  // IBM Cloud IAM answers {"errorCode": "BXNIM…", "errorMessage": …} instead of RFC 6749's fields.
  const code = typeof json.error === 'string' ? json.error : typeof json.errorCode === 'string' ? json.errorCode : undefined;
  const parts = [code, typeof json.error_description === 'string' ? json.error_description : typeof json.errorMessage === 'string' ? json.errorMessage : undefined].filter((p): p is string => p !== undefined);
  // eslint-disable-next-line no-control-regex
  const text = redact(parts.join(': '), secrets).replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  return { code, text: text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text };
}

/** Decides from a token endpoint's status and body (pure apart from the arguments). */
export function interpretTokenResponse(status: number, body: string, where: string, request: Pick<TokenRequest, 'secrets' | 'who' | 'rejectedCodes'>, receivedAt: Date, attempts = 1): TokenAnswer {
  if (status === 200) {
    let json: { access_token?: unknown; token_type?: unknown; expires_in?: unknown };
    try {
      json = JSON.parse(body) as typeof json;
    } catch {
      throw new ProtocolError(`${where} answered 200 without a JSON body; a token endpoint answers {"access_token": …}`);
    }
    if (typeof json !== 'object' || json === null || typeof json.access_token !== 'string') throw new ProtocolError(`${where} answered 200 without an access_token`);
    if (typeof json.token_type === 'string' && json.token_type.toLowerCase() !== 'bearer') throw new ProtocolError(`${where} issued a token of type "${json.token_type.replace(/[^\x21-\x7e]/g, '?').slice(0, 40)}"; only Bearer tokens can be sent by nginx`);
    const expiresIn = typeof json.expires_in === 'number' ? json.expires_in : typeof json.expires_in === 'string' && /^\d+$/.test(json.expires_in) ? Number(json.expires_in) : undefined;
    if (expiresIn !== undefined && !(expiresIn > 0)) throw new ProtocolError(`${where} issued a token that is already expired (expires_in ${expiresIn}); refused, nothing written`);
    return { accessToken: json.access_token, expiresIn, receivedAt };
  }
  const { code, text } = tokenErrorText(body, request.secrets);
  const quoted = text ? `: "${text}"` : '';
  if (status === 401 || status === 403 || (status === 400 && code !== undefined && (REJECTED.has(code) || request.rejectedCodes?.includes(code) === true))) {
    throw new CredentialsRejectedError(`${where} refused the token request for ${request.who} (${status}${quoted}); check the secret source and the client at the authorization server`);
  }
  if (status >= 500) throw new BackendUnavailableError(`${where} answered ${status}${quoted} after ${attempts} attempt(s); the token endpoint is failing, try again later`);
  throw new ProtocolError(`${where} answered ${status}${quoted}; check token_url and the grant's parameters (scope, audience, resource)`);
}
