/**
 * The cloudant-iam kind without a network: what its configuration accepts and refuses, the
 * token request it builds, how IAM's refusal of a key and Cloudant's /_iam_session answers are
 * read, and the whitelist its values pass. The kind against a scripted IAM and Cloudant behind
 * a real nginx is test/integration/cloudant-iam.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnySessionConfig } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';
import { IAM_APIKEY_GRANT, cloudantIam, iamSessionCredential, iamTokenForm, type CloudantIamIo, type IamSessionResponse } from '../../src/credentials/cloudant-iam.js';
import { credentialKind } from '../../src/credentials/factory.js';
import { sessionSecret } from '../../src/credentials/secret.js';
import { interpretTokenResponse } from '../../src/credentials/token-endpoint.js';
import { CookieRefusedError, CredentialsRejectedError, ProtocolError, BackendUnavailableError } from '../../src/errors.js';
import { leakGuard, renderSnippet } from '../../src/nginx/snippet.js';

type IamSession = Extract<AnySessionConfig, { kind: 'cloudant-iam' }>;

const minimal = { name: 'cloudant', kind: 'cloudant-iam', url: 'https://acct.cloudant.com', api_key_env: 'CLOUDANT_APIKEY', include: '/etc/nginx/cloudant.conf' };

function parse(session: Record<string, unknown>): { ok: true; session: IamSession } | { ok: false; problems: string[] } {
  const result = validateConfig({ sessions: [session] });
  if (!result.ok) return { ok: false, problems: result.problems };
  return { ok: true, session: result.config.sessions[0] as IamSession };
}

function valid(extra: Record<string, unknown> = {}): IamSession {
  const result = parse({ ...minimal, ...extra });
  if (!result.ok) throw new Error(result.problems.join('; '));
  return result.session;
}

function problems(extra: Record<string, unknown>, base: Record<string, unknown> = minimal): string {
  const result = parse({ ...base, ...extra });
  assert.equal(result.ok, false, 'the configuration is refused');
  return (result as { problems: string[] }).problems.join('\n');
}

describe('cloudant-iam configuration', () => {
  it('a minimal session gets IBM IAM, Bearer use, a /_session probe and the Authorization variable', () => {
    const s = valid();
    assert.equal(s.iam_url, 'https://iam.cloud.ibm.com/identity/token');
    assert.equal(s.token_use, 'bearer');
    assert.equal(s.probe_path, '/_session');
    assert.equal(s.variable, 'auth_authorization');
    assert.equal(s.lifetime, 3600);
    assert.deepEqual(sessionSecret(s), { session: 'cloudant', prefix: 'api_key', what: 'API key', file: undefined, env: 'CLOUDANT_APIKEY', credential: undefined, maxBytes: 4096 });
  });

  it('token_use: cookie makes the variable default auth_cookie; a variable that is set is kept', () => {
    assert.equal(valid({ token_use: 'cookie' }).variable, 'auth_cookie');
    assert.equal(valid({ token_use: 'cookie', variable: 'cloudant_cookie' }).variable, 'cloudant_cookie');
    assert.equal(valid({ variable: 'cloudant_auth' }).variable, 'cloudant_auth');
    assert.match(problems({ variable: '' }), /sessions\[0\] \(cloudant\)\.variable: must be an nginx variable name/);
    assert.match(problems({ token_use: 'header' }), /token_use/);
  });

  it('refuses a literal api_key without echoing it, and asks for exactly one key source', () => {
    const text = problems({ api_key: 'TOPSECRET-KEY-123' });
    assert.match(text, /unknown key sessions\[0\] \(cloudant\)\.api_key: a literal API key is not accepted; use api_key_file, api_key_env or api_key_credential/);
    assert.doesNotMatch(text, /TOPSECRET/);
    const { api_key_env: _, ...none } = minimal;
    assert.match(problems({}, none), /needs an API key source: api_key_file, api_key_env or api_key_credential/);
    assert.match(problems({ api_key_file: '/etc/sr/key' }), /has more than one API key source/);
    assert.match(problems({ api_key_file: 'relative/key', api_key_env: undefined }), /api_key_file: must be an absolute path/);
  });

  it('names the kind a key of another kind belongs to', () => {
    const text = problems({ username: 'svc', password_file: '/etc/pw', token_url: 'https://idp/token', cookie_name: 'X' });
    assert.match(text, /unknown key sessions\[0\] \(cloudant\)\.username: it belongs to kind couchdb-session or basic, and this session is kind cloudant-iam/);
    assert.match(text, /\.password_file: it belongs to kind couchdb-session or basic, and this session is kind cloudant-iam/);
    assert.match(text, /\.token_url: it belongs to kind oauth2-client-credentials, and this session is kind cloudant-iam/);
    assert.match(text, /\.cookie_name: it belongs to kind couchdb-session, and this session is kind cloudant-iam/);
    // And the other way round: an api_key_file on a CouchDB session names this kind.
    assert.match(problems({ kind: undefined, username: 'svc', password_env: 'P', api_key_env: undefined, api_key_file: '/k' }), /\.api_key_file: it belongs to kind cloudant-iam, and this session is kind couchdb-session/);
  });

  it('iam_url must be https, or http on a loopback host only (the API key is sent to it)', () => {
    assert.match(problems({ iam_url: 'http://iam.example.org/identity/token' }), /iam_url: must be https:\/\/ \(the API key is sent to it\)/);
    assert.match(problems({ iam_url: 'http://10.0.0.5/identity/token' }), /iam_url: must be https/);
    assert.match(problems({ iam_url: 'https://user:pw@iam.example.org/token' }), /iam_url: must not contain credentials/);
    for (const ok of ['https://iam.example.org/identity/token', 'http://127.0.0.1:8080/token', 'http://localhost/token', 'http://[::1]:9/token']) assert.equal(valid({ iam_url: ok }).iam_url, ok);
  });
});

describe('cloudant-iam requests and answers', () => {
  it('asks IAM with the API-key grant and nothing else', () => {
    assert.deepEqual(iamTokenForm('k-1'), { grant_type: 'urn:ibm:params:oauth:grant-type:apikey', apikey: 'k-1' });
    assert.equal(IAM_APIKEY_GRANT, 'urn:ibm:params:oauth:grant-type:apikey');
  });

  it("reads IAM's documented answer: 200 token; 400 BXNIM0415E and 401 refuse the key (exit 77) without quoting it", () => {
    const request = { secrets: ['THE-KEY'], who: 'the API key', rejectedCodes: ['BXNIM0415E'] };
    const now = new Date();
    const ok = interpretTokenResponse(200, JSON.stringify({ access_token: 'eyJ.a.b', refresh_token: 'r', token_type: 'Bearer', expires_in: 3600, expiration: 1_900_000_000, scope: 'ibm openid' }), 'iam', request, now);
    assert.deepEqual(ok, { accessToken: 'eyJ.a.b', expiresIn: 3600, receivedAt: now });
    const notFound = JSON.stringify({ errorCode: 'BXNIM0415E', errorMessage: 'Provided API key could not be found. THE-KEY', context: { requestId: 'x' } });
    assert.throws(
      () => interpretTokenResponse(400, notFound, 'iam', request, now),
      (e: Error) => e instanceof CredentialsRejectedError && e.exitCode === 77 && /BXNIM0415E: Provided API key could not be found/.test(e.message) && !e.message.includes('THE-KEY'),
    );
    assert.throws(() => interpretTokenResponse(401, '{}', 'iam', request, now), CredentialsRejectedError);
    // Another 400 is a malformed request, not a refused key; without the code listed, neither is BXNIM0415E.
    assert.throws(() => interpretTokenResponse(400, JSON.stringify({ errorCode: 'BXNIM0109E', errorMessage: 'Property missing or empty.' }), 'iam', request, now), ProtocolError);
    assert.throws(() => interpretTokenResponse(400, notFound, 'iam', { secrets: [], who: 'c' }, now), ProtocolError);
  });

  const answer = (over: Partial<IamSessionResponse>): IamSessionResponse => ({ status: 200, setCookie: [], body: '{"ok":true}', serverDate: undefined, receivedAt: new Date('2030-01-01T00:00:00Z'), attempts: 1, ...over });

  it('/_iam_session: the IAMSession cookie with its Max-Age, else its Expires, else the token lifetime', () => {
    const at = new Date('2030-01-01T00:00:00Z');
    const byMaxAge = iamSessionCredential(answer({ setCookie: ['IAMSession=abc123; Version=1; Path=/; HttpOnly; Secure; Max-Age=600'] }), 'w', 3600, []);
    assert.equal(byMaxAge.value, 'IAMSession=abc123');
    assert.equal(byMaxAge.expiry.source, 'max-age');
    assert.equal(byMaxAge.expiry.expires.getTime() - at.getTime(), 600_000);
    const byExpires = iamSessionCredential(answer({ setCookie: ['IAMSession=abc; Path=/; Expires=Tue, 01 Jan 2030 00:20:00 GMT'], serverDate: 'Tue, 01 Jan 2030 00:00:00 GMT' }), 'w', 3600, []);
    assert.equal(byExpires.expiry.source, 'expires');
    assert.equal(byExpires.expiry.expires.getTime() - at.getTime(), 1_200_000);
    const byToken = iamSessionCredential(answer({ setCookie: ['IAMSession=abc; Path=/; HttpOnly'] }), 'w', 3599, []);
    assert.equal(byToken.expiry.source, 'expires_in');
    assert.equal(byToken.expiry.expires.getTime() - at.getTime(), 3_599_000);
  });

  it('/_iam_session refusals: no cookie, a hostile cookie, 401, 410, 503, each with its exit code and no token quoted', () => {
    assert.throws(() => iamSessionCredential(answer({ setCookie: ['AuthSession=x; Path=/'] }), 'w', 60, []), (e: Error) => e instanceof ProtocolError && /set no IAMSession cookie/.test(e.message));
    assert.throws(() => iamSessionCredential(answer({ setCookie: ['IAMSession=$http_authorization; Path=/'] }), 'w', 60, []), CookieRefusedError);
    assert.throws(() => iamSessionCredential(answer({ setCookie: ['IAMSession=a; Max-Age=0'] }), 'w', 60, []), /already expired/);
    assert.throws(
      () => iamSessionCredential(answer({ status: 401, body: '{"error":"unauthorized","reason":"bad token eyJ.tok.en"}' }), 'w', 60, ['eyJ.tok.en']),
      (e: Error) => e instanceof CredentialsRejectedError && !e.message.includes('eyJ.tok.en') && /\[redacted\]/.test(e.message),
    );
    assert.throws(() => iamSessionCredential(answer({ status: 410, body: '' }), 'w', 60, []), (e: Error) => e instanceof ProtocolError && /use token_use: bearer/.test(e.message));
    assert.throws(() => iamSessionCredential(answer({ status: 503, body: '' }), 'w', 60, []), BackendUnavailableError);
  });
});

describe('cloudant-iam kind', () => {
  const io = (over: Partial<CloudantIamIo> = {}): CloudantIamIo & { posted: string[] } => {
    const posted: string[] = [];
    return {
      posted,
      readApiKey: async () => 'the-api-key',
      requestToken: async (request) => {
        assert.deepEqual(request.form, { grant_type: IAM_APIKEY_GRANT, apikey: 'the-api-key' });
        return { accessToken: 'eyJhbGciOi.payload.sig', expiresIn: 3600, receivedAt: new Date() };
      },
      postIamSession: async (_s, token) => {
        posted.push(token);
        return answer2(['IAMSession=c00kie; Path=/; HttpOnly; Max-Age=3600']);
      },
      ...over,
    };
  };
  const answer2 = (setCookie: string[]): IamSessionResponse => ({ status: 200, setCookie, body: '{"ok":true}', serverDate: undefined, receivedAt: new Date(), attempts: 1 });

  it('bearer: the Authorization header with the access token, the /_session probe, RFC 6750 challenges read', async () => {
    const kind = cloudantIam(valid(), io());
    assert.equal(kind.header, 'authorization');
    const credential = await kind.obtain();
    assert.equal(credential.value, 'Bearer eyJhbGciOi.payload.sig');
    assert.equal(credential.expiry.source, 'expires_in');
    assert.equal(typeof kind.probe, 'function');
    assert.equal(kind.renew, undefined);
    assert.equal(kind.challenge('Bearer error="invalid_token"'), 'dead');
    assert.equal(kind.challenge(undefined), 'unknown');
    assert.throws(() => kind.assertSafe('Bearer a b'), CookieRefusedError);
    assert.throws(() => kind.assertSafe('IAMSession=abc'), CookieRefusedError);
    assert.deepEqual(credentialKind(valid()).describe(), { kind: 'cloudant-iam', url: 'https://acct.cloudant.com', iam_url: 'https://iam.cloud.ibm.com/identity/token', token_use: 'bearer' });
  });

  it('cookie: the token is posted to /_iam_session and the IAMSession cookie goes into the Cookie header', async () => {
    const fake = io();
    const kind = cloudantIam(valid({ token_use: 'cookie' }), fake);
    assert.equal(kind.header, 'cookie');
    const credential = await kind.obtain();
    assert.deepEqual(fake.posted, ['eyJhbGciOi.payload.sig']);
    assert.equal(credential.value, 'IAMSession=c00kie');
    assert.equal(credential.expiry.source, 'max-age');
    kind.assertSafe('IAMSession=c00kie');
    assert.throws(() => kind.assertSafe('AuthSession=c00kie'), CookieRefusedError);
    assert.throws(() => kind.assertSafe('IAMSession=a$b'), CookieRefusedError);
    assert.equal(kind.challenge('Bearer error="invalid_token"'), 'unknown', 'a cookie is not what a Bearer challenge is about');
  });

  it('refuses a token outside the b64token alphabet before it is sent anywhere', async () => {
    const fake = io({ requestToken: async () => ({ accessToken: 'tok"; set $x', expiresIn: 60, receivedAt: new Date() }) });
    for (const token_use of ['bearer', 'cookie']) await assert.rejects(cloudantIam(valid({ token_use }), fake).obtain(), CookieRefusedError);
    assert.deepEqual(fake.posted, []);
  });

  it('the snippet guards /_iam_session and /_session, and sends the credential in the header of its token_use', () => {
    const bearer = valid();
    assert.equal(leakGuard(bearer), '# Leak guard: clients may not log in as, or out of, the service account.\nlocation = /_session {\n    return 403;\n}\n\nlocation = /_iam_session {\n    return 403;\n}\n');
    const render = (session: Record<string, unknown>) => {
      const result = validateConfig({ daemon: { listen: '127.0.0.1:9981', fallback_key_file: '/etc/sr/key.conf' }, sessions: [{ ...minimal, url: 'http://127.0.0.1:5984', ...session }] });
      if (!result.ok) throw new Error(result.problems.join('; '));
      return renderSnippet('server', result.config, result.config.sessions[0]!, 't');
    };
    const b = render({});
    assert.match(b, /^ {4}proxy_set_header Authorization \$auth_authorization;$/m);
    assert.match(b, /^ {4}proxy_set_header Cookie "";$/m);
    const c = render({ token_use: 'cookie' });
    assert.match(c, /^ {4}proxy_set_header Cookie \$auth_cookie;$/m);
    assert.match(c, /^ {4}proxy_set_header Authorization "";$/m);
    assert.match(c, /^location = \/_iam_session \{$/m);
  });
});
