/**
 * A real OAuth 2.0 authorization server for tests: oidc-provider 8 in the test process, on a
 * free loopback port, with the client-credentials grant and RFC 9068 JWT access tokens for one
 * resource indicator (RFC 8707; a request without `resource` gets it too, as a token endpoint
 * that serves one API does).
 *
 * - Two clients with the same secret: `proxy` authenticates with client_secret_basic,
 *   `proxy-post` with client_secret_post (oidc-provider holds each client to its one method).
 * - Tokens are signed ES256 with a key generated here; `rotateKeys()` replaces it (new kid, old
 *   key gone from the JWKS) by swapping in a new provider instance behind the same listener, so
 *   the issuer, the port and the URLs stay the same.
 * - `stop()` closes the listener (token requests meet a refused connection), `start()` opens it
 *   again on the same port.
 * - Every POST to the token endpoint is counted with its status, so tests can assert "no extra
 *   token request".
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';
import { freePort } from './ports.js';

/** The client that authenticates with HTTP Basic (client_secret_basic). */
export const BASIC_CLIENT = 'proxy';
/** The client that authenticates with form fields (client_secret_post). */
export const POST_CLIENT = 'proxy-post';
/**
 * The clients' secret: printable ASCII (RFC 6749 VSCHAR) with the characters that must be
 * form-encoded before Basic (RFC 6749 2.3.1: `:`, `+`, `/`, space, `%`, `&`, `=`).
 */
export const CLIENT_SECRET = 'Sx7:q+/ %2F&=~sec';

export interface AuthorizationServerOptions {
  /** Access token lifetime in seconds (`expires_in`); default 60. Change later with setAccessTokenTtl. */
  accessTokenTtl?: number;
  /** The resource indicator (and `aud` of every token); default `https://api.test/`. */
  resource?: string;
  /** The scopes the resource server grants (a client asking for others gets none of them); default `api:read`. */
  scope?: string;
}

/** One request to the token endpoint, as the server saw it. */
export interface TokenRequestSeen {
  at: number;
  /** The status the server answered. */
  status: number;
}

export interface AuthorizationServer {
  issuer: string;
  tokenUrl: string;
  jwksUri: string;
  /** The resource indicator; every token's `aud`. */
  resource: string;
  port: number;
  /** Every POST to the token endpoint so far (successful or not), in order. */
  tokenRequests(): readonly TokenRequestSeen[];
  /** Tokens issued so far (oidc-provider's grant.success). */
  tokensIssued(): number;
  /** The kid tokens are signed with now. */
  kid(): string;
  /** Lifetime of the tokens issued from now on. */
  setAccessTokenTtl(seconds: number): void;
  /** A new signing key (new kid); the old one is dropped from the JWKS. */
  rotateKeys(): Promise<void>;
  /** Closes the listener: the token endpoint is down (connections refused). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

/** oidc-provider's storage for the few artifacts it keeps: a Map per provider instance, no LRU, no warning. */
function memoryAdapterClass() {
  const store = new Map<string, unknown>();
  return class MapAdapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: unknown) {
      store.set(this.key(id), payload);
    }
    async find(id: string) {
      return store.get(this.key(id));
    }
    async findByUid() {
      return undefined;
    }
    async findByUserCode() {
      return undefined;
    }
    async consume(id: string) {
      const found = store.get(this.key(id)) as Record<string, unknown> | undefined;
      if (found) found.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.key(id));
    }
    async revokeByGrantId() {
      return undefined;
    }
  };
}

async function signingKey(n: number): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `as-key-${n}-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' };
}

/** Starts the authorization server on a free loopback port. */
export async function startAuthorizationServer(options: AuthorizationServerOptions = {}): Promise<AuthorizationServer> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const resource = options.resource ?? 'https://api.test/';
  const scope = options.scope ?? 'api:read';
  let ttl = options.accessTokenTtl ?? 60;
  let issued = 0;
  const seen: TokenRequestSeen[] = [];
  let keyCount = 0;
  let key = await signingKey(++keyCount);

  const makeProvider = (jwk: Record<string, unknown>): Provider => {
    const client = { client_secret: CLIENT_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
    const provider = new Provider(issuer, {
      adapter: memoryAdapterClass(),
      jwks: { keys: [jwk] },
      clients: [
        { ...client, client_id: BASIC_CLIENT, token_endpoint_auth_method: 'client_secret_basic' },
        { ...client, client_id: POST_CLIENT, token_endpoint_auth_method: 'client_secret_post' },
      ],
      clientDefaults: { id_token_signed_response_alg: 'ES256' },
      cookies: { keys: [randomBytes(16).toString('hex')] },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          // A client that names no resource gets the one API this server issues tokens for.
          defaultResource: () => resource,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, indicator: string) => {
            if (indicator !== resource) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
            return { scope, audience: resource, accessTokenTTL: ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
          },
        },
      },
      ttl: { ClientCredentials: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) => token.resourceServer?.accessTokenTTL ?? ttl },
    });
    provider.on('grant.success', () => issued++);
    return provider;
  };
  let handler = makeProvider(key).callback();

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' && new URL(req.url ?? '/', issuer).pathname === '/token') {
      const entry: TokenRequestSeen = { at: Date.now(), status: 0 };
      seen.push(entry);
      res.once('finish', () => (entry.status = res.statusCode));
    }
    handler(req, res);
  };
  let server: http.Server | undefined;
  const listen = async () => {
    const s = http.createServer(onRequest);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    server = s;
  };
  await listen();

  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    jwksUri: `${issuer}/jwks`,
    resource,
    port,
    tokenRequests: () => seen,
    tokensIssued: () => issued,
    kid: () => String(key.kid),
    setAccessTokenTtl(seconds) {
      ttl = seconds;
    },
    async rotateKeys() {
      key = await signingKey(++keyCount);
      handler = makeProvider(key).callback();
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeAllConnections();
      await closed;
    },
    async start() {
      if (!server) await listen();
    },
  };
}
