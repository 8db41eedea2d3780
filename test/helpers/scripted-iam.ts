/**
 * A SCRIPTED IAM token endpoint and Cloudant account, modelled on IBM's documented responses;
 * neither is the real service (IBM Cloud cannot run here). What is modelled, and from where:
 *
 * - IAM `POST /identity/token` (form `grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=…`,
 *   IBM's "Getting an IAM token by using an API key"): a known key gets 200 JSON with
 *   `access_token` (a JWT-shaped string), `refresh_token`, `token_type: "Bearer"`,
 *   `expires_in: 3600`, `expiration` (epoch seconds) and `scope: "ibm openid"`; an unknown key gets
 *   400 `{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found.",…}`;
 *   another grant type gets 400 BXNIM0109E.
 * - Cloudant `POST /_iam_session` with the access token as form field `access_token` (what IBM's
 *   Node.js client sends) or JSON `{"access_token": …}` (what its Java and Python clients send):
 *   200 `{"ok":true}` and `Set-Cookie: IAMSession=<random>; Version=1; Path=/; HttpOnly;
 *   Max-Age=<lifetime>`; a token it does not accept gets 401.
 * - Every other path wants `Authorization: Bearer <live token>` or `Cookie: IAMSession=<live>`;
 *   anything else gets 401 `{"error":"unauthorized",…}` WITHOUT a `WWW-Authenticate` challenge:
 *   Cloudant's documented 401s for an expired token carry only a JSON reason ("exp not in
 *   future"), so the daemon has to probe. `GET /_session` answers 200 with the IAM identity in
 *   `userCtx.name` for a live credential and 401 for a dead one.
 *
 * `invalidateAll()` kills every token and cookie issued so far, as an IAM key rotation or token
 * revocation would. The servers count token requests and session requests, and remember the
 * credential headers each data request arrived with, so tests can check what nginx forwarded.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedIamOptions {
  /** The API key IAM knows. */
  apiKey: string;
  /** Seconds IAM says a token lives (`expires_in`); default 3600, as IBM documents. */
  tokenLifetime?: number;
  /** Max-Age of the IAMSession cookie; default the token lifetime. */
  cookieMaxAge?: number;
}

/** The credential headers one data request reached the account with. */
export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  cookie: string | undefined;
  status: number;
}

export interface ScriptedIam {
  /** IAM's token endpoint (`…/identity/token`). */
  tokenUrl: string;
  /** The Cloudant account URL. */
  accountUrl: string;
  /** Token requests received, successful or not. */
  tokenRequests(): number;
  /** Token requests answered with a token. */
  tokensIssued(): number;
  /** `POST /_iam_session` requests answered with a cookie. */
  cookiesIssued(): number;
  /** Every access token and IAMSession cookie value handed out so far (for leak checks). */
  issued(): string[];
  /** The Authorization value of the newest token, and the newest cookie as `IAMSession=…`. */
  current(): { bearer: string | undefined; cookie: string | undefined };
  /** Data requests (not /identity/token, /_iam_session or /_session) with the headers they came with. */
  seen(): SeenRequest[];
  /** From now on every token and cookie issued so far is refused. */
  invalidateAll(): void;
  stop(): Promise<void>;
}

/** The IAM identity the account sees the key as. */
export const IAM_IDENTITY = 'iam-ServiceId-5c4a1e1b-0000-4000-8000-000000000001';

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

/** A JWT-shaped token (header.payload.signature, base64url), as IAM's access tokens are. */
function jwtShaped(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ kid: '20240101', alg: 'RS256' })}.${part(claims)}.${randomBytes(32).toString('base64url')}`;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Starts the scripted IAM and the scripted Cloudant account, each on its own loopback port. */
export async function startScriptedIam(options: ScriptedIamOptions): Promise<ScriptedIam> {
  const lifetime = options.tokenLifetime ?? 3600;
  const maxAge = options.cookieMaxAge ?? lifetime;
  /** Live credentials: value -> the epoch it was issued in. */
  const tokens = new Map<string, number>();
  const cookies = new Map<string, number>();
  const issued: string[] = [];
  const seen: SeenRequest[] = [];
  let epoch = 0;
  let tokenRequests = 0;
  let tokensIssued = 0;
  let cookiesIssued = 0;
  let newestToken: string | undefined;
  let newestCookie: string | undefined;

  const iam = http.createServer((req, res) => {
    void readBody(req).then((body) => {
      if (req.method !== 'POST' || req.url !== '/identity/token') return json(res, 404, { errorCode: 'BXNIM0400E', errorMessage: 'Not found.' });
      tokenRequests++;
      const form = new URLSearchParams(body);
      if (form.get('grant_type') !== 'urn:ibm:params:oauth:grant-type:apikey') {
        return json(res, 400, { errorCode: 'BXNIM0109E', errorMessage: 'Property missing or empty.', context: { requestId: randomBytes(8).toString('hex') } });
      }
      if (form.get('apikey') !== options.apiKey) {
        return json(res, 400, { errorCode: 'BXNIM0415E', errorMessage: 'Provided API key could not be found.', context: { requestId: randomBytes(8).toString('hex') } });
      }
      const now = Math.floor(Date.now() / 1000);
      const token = jwtShaped({ iam_id: IAM_IDENTITY, sub: IAM_IDENTITY, iat: now, exp: now + lifetime, jti: randomBytes(8).toString('hex') });
      tokens.set(token, epoch);
      issued.push(token);
      newestToken = token;
      tokensIssued++;
      json(res, 200, { access_token: token, refresh_token: randomBytes(48).toString('base64url'), token_type: 'Bearer', expires_in: lifetime, expiration: now + lifetime, scope: 'ibm openid' });
    });
  });

  const live = (map: Map<string, number>, value: string | undefined) => value !== undefined && map.get(value) === epoch;
  /** Who a request is, by its credential; undefined when it has none that is live. */
  const caller = (req: http.IncomingMessage): { has: boolean; ok: boolean } => {
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const cookie = /(?:^|;\s*)IAMSession=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    return { has: bearer !== undefined || cookie !== undefined, ok: live(tokens, bearer) || live(cookies, cookie) };
  };

  const account = http.createServer((req, res) => {
    void readBody(req).then((body) => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (path === '/_iam_session' && req.method === 'POST') {
        let token: string | undefined;
        if (/json/.test(req.headers['content-type'] ?? '')) {
          try {
            token = (JSON.parse(body) as { access_token?: string }).access_token;
          } catch {
            return json(res, 400, { error: 'bad_request', reason: 'invalid UTF-8 JSON' });
          }
        } else token = new URLSearchParams(body).get('access_token') ?? undefined;
        if (!live(tokens, token)) return json(res, 401, { error: 'unauthorized', reason: 'The access token is not valid.' });
        const value = randomBytes(96).toString('base64url');
        cookies.set(value, epoch);
        issued.push(value);
        newestCookie = `IAMSession=${value}`;
        cookiesIssued++;
        return json(res, 200, { ok: true }, { 'set-cookie': `IAMSession=${value}; Version=1; Path=/; HttpOnly; Max-Age=${maxAge}` });
      }
      const who = caller(req);
      if (path === '/_session' && req.method === 'GET') {
        if (who.ok) return json(res, 200, { ok: true, info: { authentication_db: '_users', authentication_handlers: ['iam', 'cookie', 'default'], authenticated: 'iam' }, userCtx: { name: IAM_IDENTITY, roles: [] } });
        if (who.has) return json(res, 401, { error: 'unauthorized', reason: 'exp not in future' });
        return json(res, 200, { ok: true, info: { authentication_db: '_users', authentication_handlers: ['iam', 'cookie', 'default'] }, userCtx: { name: null, roles: [] } });
      }
      const status = who.ok ? 200 : 401;
      seen.push({ method: req.method ?? '', path, authorization: req.headers.authorization, cookie: req.headers.cookie, status });
      if (who.ok) return json(res, 200, { _id: path.split('/').pop(), ok: true, method: req.method, bytes: Buffer.byteLength(body) });
      return json(res, 401, who.has ? { error: 'unauthorized', reason: 'exp not in future' } : { error: 'unauthorized', reason: 'one of _reader, _admin is required for this request' });
    });
  });

  const [tokenOrigin, accountUrl] = await Promise.all([listen(iam), listen(account)]);
  return {
    tokenUrl: `${tokenOrigin}/identity/token`,
    accountUrl,
    tokenRequests: () => tokenRequests,
    tokensIssued: () => tokensIssued,
    cookiesIssued: () => cookiesIssued,
    issued: () => [...issued],
    current: () => ({ bearer: newestToken === undefined ? undefined : `Bearer ${newestToken}`, cookie: newestCookie }),
    seen: () => [...seen],
    invalidateAll: () => {
      epoch++;
    },
    stop: async () => {
      await Promise.all([close(iam), close(account)]);
    },
  };
}
