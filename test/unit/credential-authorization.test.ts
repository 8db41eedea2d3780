/**
 * The pure rules of the Authorization-header kinds: what a 401's WWW-Authenticate says of a
 * Bearer token (RFC 6750 3.1), which values may be written into the include, how a probe's
 * answer is read, and where the jwt kind puts its roles.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/validate.js';
import { assertSafeAuthorization, bearerChallenge } from '../../src/credentials/authorization.js';
import { jwtBearer, rolesClaim } from '../../src/credentials/jwt.js';
import { CookieRefusedError } from '../../src/errors.js';
import { MAX_NGINX_TOKEN } from '../../src/session/cookie.js';
import { tokenProbeVerdict } from '../../src/session/probe.js';

describe('bearerChallenge', () => {
  it('reads invalid_token as a dead token, in the spellings servers send', () => {
    for (const header of [
      'Bearer error="invalid_token"',
      'Bearer realm="example", error="invalid_token", error_description="The access token expired"',
      // Azure AD puts its own parameters first.
      'Bearer authorization_uri="https://login.example/authorize", error="invalid_token", error_description="The access token is missing or invalid."',
      'Bearer error=invalid_token',
      'Bearer realm="a, b",error = "invalid_token"',
      'bearer ERROR="INVALID_TOKEN"',
      // Several challenges: the Bearer one need not come first.
      'Basic realm="simple", Bearer realm="api", error="invalid_token"',
    ]) {
      assert.equal(bearerChallenge(header), 'dead', header);
    }
  });

  it('reads insufficient_scope as an answer about the request, not the token', () => {
    assert.equal(bearerChallenge('Bearer realm="api", error="insufficient_scope", scope="api:admin"'), 'authorization');
    assert.equal(bearerChallenge('Basic realm="x", Bearer error="insufficient_scope"'), 'authorization');
  });

  it('says nothing for no challenge, no error, another error or another scheme', () => {
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Bearer realm="api"',
      'Bearer realm="api", error="invalid_request"',
      'Basic realm="couch"',
      'Basic realm="x", error="invalid_token"',
      'DPoP error="invalid_token"',
      'XBearer error="invalid_token"',
    ]) {
      assert.equal(bearerChallenge(header), 'unknown', String(header));
    }
  });
});

describe('assertSafeAuthorization', () => {
  const refused = (value: string, scheme: 'Bearer' | 'Basic', message: RegExp) =>
    assert.throws(
      () => assertSafeAuthorization(value, scheme, 'the access token'),
      (error: unknown) => error instanceof CookieRefusedError && message.test(error.message) && (value.length <= 7 || !error.message.includes(value.slice(7))),
      value,
    );

  it('accepts RFC 6750 b64token values after the scheme, = padding at the end only', () => {
    for (const value of ['Bearer abc', 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_~+/', 'Bearer YWJj==', `Bearer ${'a'.repeat(MAX_NGINX_TOKEN - 7)}`]) {
      assert.doesNotThrow(() => assertSafeAuthorization(value, 'Bearer', 'the access token'), value.slice(0, 40));
    }
    assert.doesNotThrow(() => assertSafeAuthorization('Basic dXNlcjpwYXNz', 'Basic', 'the Basic credential'));
  });

  it('refuses another scheme, an empty token, and a token longer than nginx holds', () => {
    refused('Basic dXNlcjpwYXNz', 'Bearer', /is not a Bearer credential/);
    refused('bearer abc', 'Bearer', /is not a Bearer credential/);
    refused('Bearer ', 'Bearer', /is empty/);
    refused(`Bearer ${'a'.repeat(MAX_NGINX_TOKEN - 6)}`, 'Bearer', new RegExp(`is ${MAX_NGINX_TOKEN - 6} bytes, over the ${MAX_NGINX_TOKEN - 7}-byte limit`));
  });

  it('refuses every character nginx could interpret, naming its position but never echoing $', () => {
    refused('Bearer abc$def', 'Bearer', /\(0x24\) at position 4;/);
    refused('Bearer ab"cd', 'Bearer', /\('"', 0x22\) at position 3;/);
    refused('Bearer a b', 'Bearer', /\(0x20\) at position 2;/);
    refused('Bearer abc\n', 'Bearer', /\(0x0a\) at position 4;/);
    refused('Bearer ab{c}', 'Bearer', /\('\{', 0x7b\) at position 3;/);
    refused('Bearer a\\b', 'Bearer', /0x5c\) at position 2;/);
    refused('Bearer a;b', 'Bearer', /0x3b\) at position 2;/);
    refused('Bearer é', 'Bearer', /\(0xe9\) at position 1;/);
    // Padding in the middle is not b64token.
    refused('Bearer ab=c', 'Bearer', /\('=', 0x3d\) at position 3;/);
  });
});

describe('tokenProbeVerdict', () => {
  it('401 means the credential is dead', () => {
    assert.equal(tokenProbeVerdict(401, '').state, 'dead');
    assert.equal(tokenProbeVerdict(401, '{"error":"unauthorized"}').state, 'dead');
  });

  it('CouchDB\'s anonymous answer (userCtx.name null) means the backend did not take the token', () => {
    assert.equal(tokenProbeVerdict(200, '{"ok":true,"userCtx":{"name":null,"roles":[]}}').state, 'dead');
  });

  it('2xx and 403 mean the token was accepted, whatever the body', () => {
    for (const [status, body] of [
      [200, '{"ok":true,"userCtx":{"name":"svc","roles":["reader"]}}'],
      [200, '{"ok":true}'],
      [200, 'not json'],
      [204, ''],
      [403, '{"error":"forbidden"}'],
    ] as const) {
      assert.equal(tokenProbeVerdict(status, body).state, 'alive', `${status} ${body}`);
    }
  });

  it('anything else says nothing about the token', () => {
    for (const status of [301, 302, 400, 404, 429, 500, 502, 503]) assert.equal(tokenProbeVerdict(status, '').state, 'unknown', String(status));
    assert.match(tokenProbeVerdict(503, 'secret backend text').reason, /^the probe answered 503$/);
  });
});

describe('rolesClaim', () => {
  it('puts the roles at the dotted path', () => {
    assert.deepEqual(rolesClaim('_couchdb.roles', ['reader', 'writer']), { _couchdb: { roles: ['reader', 'writer'] } });
    assert.deepEqual(rolesClaim('roles', []), { roles: [] });
    assert.deepEqual(rolesClaim('realm_access.app.roles', ['x']), { realm_access: { app: { roles: ['x'] } } });
  });

  it('copies the roles (the configuration\'s array is not shared with the token)', () => {
    const roles = ['a'];
    const claim = rolesClaim('roles', roles) as { roles: string[] };
    claim.roles.push('b');
    assert.deepEqual(roles, ['a']);
  });

  it('the roles reach the signed token at their path', async () => {
    const kind = jwtBearer(
      { name: 'j', kind: 'jwt', url: 'http://127.0.0.1:1', algorithm: 'HS256', key_env: 'SR_TEST_JWT_KEY', sub: 'svc', roles: ['r1'], roles_claim: 'app.roles', lifetime: 60, probe_path: '/_session', include: '/tmp/x', variable: 'auth_authorization', timeout: 1, retries: 0, schedule_only: false },
      () => new Date(1_700_000_000_000),
    );
    process.env.SR_TEST_JWT_KEY = 'k';
    try {
      const { value, expiry } = await kind.obtain();
      const payload = JSON.parse(Buffer.from(value.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      assert.deepEqual(payload, { app: { roles: ['r1'] }, sub: 'svc', iat: 1_700_000_000, exp: 1_700_000_060 });
      assert.equal(expiry.expires.getTime(), 1_700_000_060_000);
    } finally {
      delete process.env.SR_TEST_JWT_KEY;
    }
  });

  it('a roles_claim on a registered claim (sub, exp, aud, …) is refused: the kind sets those itself, and roles there would change what the token means', () => {
    for (const path of ['sub', 'exp', 'iat', 'aud', 'iss', 'nbf', 'jti', 'aud.roles']) {
      const checked = validateConfig({ sessions: [{ name: 'j', kind: 'jwt', url: 'http://127.0.0.1:1', key_env: 'K', sub: 'svc', roles: ['r'], roles_claim: path, include: '/tmp/x' }] });
      assert.equal(checked.ok, false, path);
      assert.match(checked.ok ? '' : checked.problems.join('\n'), /roles_claim.*registered claim/, path);
    }
    const fine = validateConfig({ sessions: [{ name: 'j', kind: 'jwt', url: 'http://127.0.0.1:1', key_env: 'K', sub: 'svc', roles: ['r'], roles_claim: 'subject.roles', include: '/tmp/x' }] });
    assert.equal(fine.ok, true, fine.ok ? '' : fine.problems.join('\n'));
  });
});
