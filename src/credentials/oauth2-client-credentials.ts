/**
 * `oauth2-client-credentials`: the RFC 6749 client-credentials grant. The client id and secret
 * buy a Bearer access token that lives `expires_in` seconds; there is no cheaper renewal than
 * asking again (the grant issues no refresh token), and no probe: a 401 whose challenge says
 * `error="invalid_token"` (RFC 6750) is about the token, any other 401 is treated as ever.
 */
import type { AnySessionConfig } from '../config/schema.js';
import { secretSpellings } from '../session/redact.js';
import { assertSafeAuthorization, bearerChallenge, expiryIn } from './authorization.js';
import type { CredentialKind } from './kind.js';
import { tokenProbe } from './token-probe.js';
import { readSecretLine, sessionSecret } from './secret.js';
import { requestToken } from './token-endpoint.js';

type OAuth2Session = Extract<AnySessionConfig, { kind: 'oauth2-client-credentials' }>;

/** RFC 6749 2.3.1: id and secret are form-encoded before they are joined for Basic. */
function basicClientAuth(id: string, secret: string): string {
  const enc = (s: string) => new URLSearchParams({ s }).toString().slice(2);
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

/** The oauth2-client-credentials kind for `session`. */
export function oauth2ClientCredentials(session: OAuth2Session): CredentialKind {
  const what = 'the access token';
  return {
    kind: 'oauth2-client-credentials',
    header: 'authorization',
    label: what,
    async obtain() {
      const secret = await readSecretLine(sessionSecret(session));
      const form: Record<string, string> = { grant_type: 'client_credentials' };
      if (session.scope) form.scope = session.scope;
      if (session.audience) form.audience = session.audience;
      if (session.resource) form.resource = session.resource;
      const post = session.client_auth === 'client_secret_post';
      if (post) Object.assign(form, { client_id: session.client_id, client_secret: secret });
      const answer = await requestToken({
        url: session.token_url,
        form,
        headers: post ? {} : { authorization: basicClientAuth(session.client_id, secret) },
        session,
        secrets: secretSpellings(session.client_id, secret),
        who: `client "${session.client_id}"`,
      });
      const value = `Bearer ${answer.accessToken}`;
      assertSafeAuthorization(value, 'Bearer', `the access token from ${new URL(session.token_url).origin}`);
      const expiry = answer.expiresIn === undefined ? expiryIn(session.lifetime, answer.receivedAt, 'lifetime') : expiryIn(answer.expiresIn, answer.receivedAt, 'expires_in');
      return { value, expiry };
    },
    probe: tokenProbe(session),
    challenge: bearerChallenge,
    assertSafe: (value) => assertSafeAuthorization(value, 'Bearer', what),
    describe: () => ({ kind: 'oauth2-client-credentials', url: session.url, token_url: session.token_url, client_id: session.client_id, client_auth: session.client_auth }),
  };
}
