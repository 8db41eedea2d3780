/**
 * A test resource server: a node http server that checks the Bearer token of every request with
 * `jose`, as an API behind nginx would, and records what it saw so tests can count requests by
 * path and by outcome (and the tokens that reached it).
 *
 * Two modes:
 * - `oauth2`: RFC 9068 JWT access tokens from the authorization server (test/helpers/oidc.ts),
 *   verified against its JWKS (createRemoteJWKSet; `cacheMaxAgeMs` short so a key rotation is
 *   seen, no cooldown so a new kid is fetched at once). 200 `{"ok":true,"sub":…}`; a missing
 *   token 401 `Bearer realm=…`; a bad one 401 `Bearer error="invalid_token"` (RFC 6750 3.1);
 *   paths under `/admin` need the scope `api:admin`, which is never granted: 401
 *   `Bearer error="insufficient_scope"` (a 401, not RFC 6750's 403, so nginx hands it to the
 *   daemon as a backend that answers so would). A JWKS that cannot be fetched is a 503.
 * - `jwt`: tokens minted by the jwt kind, verified HS256 or ES256 with local keys chosen by the
 *   header's `kid` (`setKeys` swaps them at run time), answering like CouchDB's jwt handler:
 *   `GET /_session` 200 `{"userCtx":{"name":sub,"roles":…}}` for a valid token and 401 for an
 *   invalid one; `/_config` needs the `_admin` role (401 "You are not a server admin." without
 *   it); any other path 200 with sub and roles. Its 401s carry no Bearer challenge (CouchDB sends
 *   none), so the daemon has to ask the probe.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify, type CryptoKey, type JWTPayload } from 'jose';

/** What the resource server made of one request. */
export type Outcome = 'ok' | 'no_token' | 'invalid_token' | 'insufficient_scope' | 'forbidden' | 'anonymous' | 'unavailable';

export interface SeenRequest {
  at: number;
  method: string;
  path: string;
  /** The Authorization header exactly as received (undefined when absent). */
  authorization: string | undefined;
  status: number;
  outcome: Outcome;
  /** Why verification failed (a jose error code), for invalid_token. */
  why?: string | undefined;
}

/** A key the jwt mode verifies with, by kid. */
export interface LocalKey {
  alg: 'HS256' | 'ES256';
  /** The HS256 secret bytes, or an ES256 public key. */
  key: Uint8Array | CryptoKey;
}

export type ResourceServerOptions =
  | { mode: 'oauth2'; issuer: string; jwksUri: string; audience: string; cacheMaxAgeMs?: number }
  | { mode: 'jwt'; keys: Record<string, LocalKey> };

export interface ResourceServer {
  url: string;
  port: number;
  /** Every request so far, in arrival order. */
  requests(): readonly SeenRequest[];
  /** Requests matching every given field (`path` as a prefix when it ends with `*`), from index `from`. */
  count(filter?: { path?: string; outcome?: Outcome; from?: number }): number;
  /** jwt mode: replace the keys it trusts (a rotation at the backend). */
  setKeys(keys: Record<string, LocalKey>): void;
  stop(): Promise<void>;
}

/** The scope paths under /admin need (oauth2 mode); the authorization server never grants it. */
export const ADMIN_SCOPE = 'api:admin';

/** A verification failure: a jose error code, or undefined for a failure that is not about the token. */
function tokenErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  // Fetching the JWKS failed: not the token's fault.
  if (code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID') return undefined;
  return code.startsWith('ERR_J') ? code : undefined;
}

function json(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}

/** `_couchdb.roles` of a payload, or []. */
function couchRoles(payload: JWTPayload): string[] {
  const roles = (payload._couchdb as { roles?: unknown } | undefined)?.roles;
  return Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [];
}

/** Starts a test resource server on a free loopback port. */
export async function startResourceServer(options: ResourceServerOptions): Promise<ResourceServer> {
  const seen: SeenRequest[] = [];
  let keys = options.mode === 'jwt' ? { ...options.keys } : {};
  const remote =
    options.mode === 'oauth2' ? createRemoteJWKSet(new URL(options.jwksUri), { cacheMaxAge: options.cacheMaxAgeMs ?? 600_000, cooldownDuration: 0, timeoutDuration: 2000 }) : undefined;

  const verify = async (token: string): Promise<JWTPayload> => {
    if (options.mode === 'oauth2') {
      const { payload } = await jwtVerify(token, remote!, { issuer: options.issuer, audience: options.audience, typ: 'at+jwt', algorithms: ['ES256'] });
      return payload;
    }
    const { payload } = await jwtVerify(
      token,
      async (header) => {
        const entry = header.kid === undefined ? undefined : keys[header.kid];
        if (!entry || entry.alg !== header.alg) throw Object.assign(new Error('no key for this kid and alg'), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
        return entry.key;
      },
      { algorithms: ['HS256', 'ES256'] },
    );
    return payload;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, record: SeenRequest): Promise<void> => {
    const answer = (status: number, outcome: Outcome, body: object, headers: Record<string, string> = {}) => {
      record.status = status;
      record.outcome = outcome;
      json(res, status, body, headers);
    };
    const path = record.path;
    const bearer = /^Bearer ([^\s]+)$/.exec(record.authorization ?? '')?.[1];
    const jwtMode = options.mode === 'jwt';
    if (bearer === undefined) {
      if (jwtMode && path === '/_session') return answer(200, 'anonymous', { ok: true, userCtx: { name: null, roles: [] } });
      if (jwtMode) return answer(401, 'no_token', { error: 'unauthorized', reason: 'Authentication required.' });
      return answer(401, 'no_token', { error: 'unauthorized' }, { 'www-authenticate': 'Bearer realm="test-resource-server"' });
    }
    let payload: JWTPayload;
    try {
      payload = await verify(bearer);
    } catch (error) {
      const code = tokenErrorCode(error);
      if (code === undefined) return answer(503, 'unavailable', { error: 'unavailable', reason: 'cannot check tokens now' });
      record.why = code;
      if (jwtMode) return answer(401, 'invalid_token', { error: 'unauthorized', reason: 'Invalid token.' });
      return answer(401, 'invalid_token', { error: 'invalid_token' }, { 'www-authenticate': `Bearer realm="test-resource-server", error="invalid_token", error_description="${code}"` });
    }
    const roles = couchRoles(payload);
    if (jwtMode) {
      if (path === '/_session') return answer(200, 'ok', { ok: true, userCtx: { name: payload.sub ?? null, roles }, info: { authenticated: 'jwt' } });
      if ((path === '/_config' || path.startsWith('/_config/')) && !roles.includes('_admin')) return answer(401, 'forbidden', { error: 'unauthorized', reason: 'You are not a server admin.' });
      return answer(200, 'ok', { ok: true, sub: payload.sub, roles, path });
    }
    if (path === '/admin' || path.startsWith('/admin/')) {
      const granted = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
      if (!granted.includes(ADMIN_SCOPE)) {
        return answer(401, 'insufficient_scope', { error: 'insufficient_scope' }, { 'www-authenticate': `Bearer realm="test-resource-server", error="insufficient_scope", scope="${ADMIN_SCOPE}"` });
      }
    }
    return answer(200, 'ok', { ok: true, sub: payload.sub, client_id: payload.client_id, path });
  };

  const server = http.createServer((req, res) => {
    const record: SeenRequest = { at: Date.now(), method: req.method ?? '', path: new URL(req.url ?? '/', 'http://x').pathname, authorization: req.headers.authorization, status: 0, outcome: 'unavailable' };
    seen.push(record);
    req.resume();
    handle(req, res, record).catch((error: unknown) => {
      record.status = 500;
      if (!res.headersSent) json(res, 500, { error: 'internal', reason: String(error) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: () => seen,
    count(filter = {}) {
      const { path, outcome, from = 0 } = filter;
      const pathMatches = (p: string) => path === undefined || (path.endsWith('*') ? p.startsWith(path.slice(0, -1)) : p === path);
      return seen.slice(from).filter((r) => pathMatches(r.path) && (outcome === undefined || r.outcome === outcome)).length;
    },
    setKeys(next) {
      keys = { ...next };
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
