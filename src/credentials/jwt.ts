/**
 * `jwt`: a JSON Web Token minted here and signed with a key the backend trusts (CouchDB's
 * `jwt_authentication_handler` with `[jwt_keys]`): `sub`, roles at a claim path (CouchDB reads
 * `_couchdb.roles`), `iat`, `exp`, and optionally `kid`, `iss`, `aud`. No request at all: a new
 * token costs a signature. Signing is done by `jose`.
 */
import type { AnySessionConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { assertSafeAuthorization, bearerChallenge, expiryIn } from './authorization.js';
import type { CredentialKind } from './kind.js';
import { tokenProbe } from './token-probe.js';
import { readSecretLine, readSecretText, sessionSecret } from './secret.js';

type JwtSession = Extract<AnySessionConfig, { kind: 'jwt' }>;

/** The claims object with `roles` put at the dotted `path` (`_couchdb.roles` -> {_couchdb: {roles}}). */
export function rolesClaim(path: string, roles: readonly string[]): Record<string, unknown> {
  const parts = path.split('.');
  let claim: unknown = [...roles];
  for (let i = parts.length - 1; i >= 0; i--) claim = { [parts[i]!]: claim };
  return claim as Record<string, unknown>;
}

/** The jwt kind for `session`. */
export function jwtBearer(session: JwtSession, now: () => Date = () => new Date()): CredentialKind {
  const what = 'the signed JWT';
  const source = sessionSecret(session);
  const signingKey = async (): Promise<Uint8Array | Awaited<ReturnType<typeof import('jose').importPKCS8>>> => {
    if (session.algorithm === 'HS256') return new TextEncoder().encode(await readSecretLine(source));
    const pem = await readSecretText(source);
    const { importPKCS8 } = await import('jose');
    try {
      return await importPKCS8(pem, session.algorithm);
    } catch {
      throw new ConfigError([`session ${session.name}: the signing key is not a PKCS#8 PEM private key for ${session.algorithm} ("-----BEGIN PRIVATE KEY-----"; convert with openssl pkcs8 -topk8 -nocrypt)`], 'key');
    }
  };
  return {
    kind: 'jwt',
    header: 'authorization',
    label: what,
    async obtain() {
      const key = await signingKey();
      // Loaded only by a jwt session: no other command or kind pays for it.
      const { SignJWT } = await import('jose');
      const issued = now();
      const iat = Math.floor(issued.getTime() / 1000);
      const claims = rolesClaim(session.roles_claim, session.roles);
      let jwt = new SignJWT(claims).setProtectedHeader({ alg: session.algorithm, typ: 'JWT', ...(session.kid ? { kid: session.kid } : {}) }).setSubject(session.sub).setIssuedAt(iat).setExpirationTime(iat + session.lifetime);
      if (session.issuer) jwt = jwt.setIssuer(session.issuer);
      if (session.audience) jwt = jwt.setAudience(session.audience);
      const value = `Bearer ${await jwt.sign(key)}`;
      assertSafeAuthorization(value, 'Bearer', what);
      // Whole seconds, as the token says: the include's expiry is the token's `exp`.
      return { value, expiry: expiryIn(session.lifetime, new Date(iat * 1000), 'exp') };
    },
    probe: tokenProbe(session),
    challenge: bearerChallenge,
    assertSafe: (value) => assertSafeAuthorization(value, 'Bearer', what),
    describe: () => ({ kind: 'jwt', url: session.url, algorithm: session.algorithm, sub: session.sub, ...(session.kid ? { kid: session.kid } : {}) }),
  };
}
