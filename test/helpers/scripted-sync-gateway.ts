/**
 * A SCRIPTED Sync Gateway, modelled on its documented REST responses; not the real server
 * (Couchbase Sync Gateway needs Couchbase Server, which cannot run here). One database, one user.
 * What is modelled:
 *
 * - `POST /{db}/_session` takes a JSON body `{"name", "password"}` only (SG reads the body as
 *   JSON and refuses another Content-Type with 415 "Invalid content type"; bad JSON is 400).
 *   Success: 200 `{"authentication_handlers":["default","cookie"],"ok":true,"userCtx":
 *   {"channels":{"!":1},"name":…}}` and `Set-Cookie: SyncGatewaySession=<40 hex>; Path=/{db}/;
 *   Expires=<RFC 1123 GMT>` (SG's session cookie carries Expires, no Max-Age, and a path scoped
 *   to the database). A wrong password: 401 `{"error":"Unauthorized","reason":"Invalid login"}`.
 * - `GET /{db}/_session` with a live cookie: 200 with the same body; with a dead one: 401
 *   `{"error":"Unauthorized","reason":"Session Invalid"}`.
 * - Every other path under `/{db}/` answers 200 with a live cookie, else 401 ("Session Invalid"
 *   for a dead cookie, "Login required" for none).
 * - Every 401 carries `WWW-Authenticate: Basic realm="Couchbase Sync Gateway"`, as SG sends it.
 *
 * `invalidateAll()` kills every session made so far (as deleting the user's sessions through the
 * admin API does). Logins are counted, and each data request's Cookie header is remembered.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedSyncGatewayOptions {
  /** The database name (default "db"). */
  db?: string;
  username: string;
  password: string;
  /** Seconds a session lives (SG's default is 24 hours). */
  sessionTtl?: number;
}

export interface ScriptedSyncGateway {
  url: string;
  db: string;
  /** Logins that made a session. */
  logins(): number;
  /** `POST /{db}/_session` requests refused for their Content-Type (a form login). */
  refusedForms(): number;
  /** Every session id handed out (for leak checks). */
  issued(): string[];
  /** The newest session as `SyncGatewaySession=…`, and when SG said it expires. */
  current(): { cookie: string | undefined; expires: Date | undefined };
  /** Data requests with the Cookie and Authorization headers they came with, and the answer. */
  seen(): { path: string; cookie: string | undefined; authorization: string | undefined; status: number }[];
  /** Every session made so far is dead from now on. */
  invalidateAll(): void;
  stop(): Promise<void>;
}

export const SG_COOKIE = 'SyncGatewaySession';
const CHALLENGE = { 'www-authenticate': 'Basic realm="Couchbase Sync Gateway"' };

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), server: 'Couchbase Sync Gateway/3.1.0', ...(status === 401 ? CHALLENGE : {}), ...headers });
  res.end(text);
}

/** Starts the scripted Sync Gateway on a free loopback port. */
export async function startScriptedSyncGateway(options: ScriptedSyncGatewayOptions): Promise<ScriptedSyncGateway> {
  const db = options.db ?? 'db';
  const ttl = options.sessionTtl ?? 24 * 3600;
  const sessions = new Map<string, { epoch: number; expires: Date }>();
  const issued: string[] = [];
  const seen: ReturnType<ScriptedSyncGateway['seen']> = [];
  let epoch = 0;
  let logins = 0;
  let refusedForms = 0;
  let newest: { cookie: string; expires: Date } | undefined;
  const sessionInfo = (name: string) => ({ authentication_handlers: ['default', 'cookie'], ok: true, userCtx: { channels: { '!': 1 }, name } });
  const liveSession = (req: http.IncomingMessage): 'live' | 'dead' | 'none' => {
    const id = new RegExp(`(?:^|;\\s*)${SG_COOKIE}=([^;]+)`).exec(req.headers.cookie ?? '')?.[1];
    if (id === undefined) return 'none';
    const session = sessions.get(id);
    return session !== undefined && session.epoch === epoch && session.expires.getTime() > Date.now() ? 'live' : 'dead';
  };

  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (path === `/${db}/_session` && req.method === 'POST') {
        const type = req.headers['content-type'] ?? '';
        if (type !== '' && !type.startsWith('application/json')) {
          refusedForms++;
          return json(res, 415, { error: 'Unsupported Media Type', reason: `Invalid content type ${type}` });
        }
        let params: { name?: unknown; password?: unknown };
        try {
          params = JSON.parse(body) as typeof params;
        } catch {
          return json(res, 400, { error: 'Bad Request', reason: 'Bad JSON' });
        }
        if (params.name !== options.username || params.password !== options.password) return json(res, 401, { error: 'Unauthorized', reason: 'Invalid login' });
        const id = randomBytes(20).toString('hex');
        const expires = new Date(Date.now() + ttl * 1000);
        sessions.set(id, { epoch, expires });
        issued.push(id);
        newest = { cookie: `${SG_COOKIE}=${id}`, expires };
        logins++;
        return json(res, 200, sessionInfo(options.username), { 'set-cookie': `${SG_COOKIE}=${id}; Path=/${db}/; Expires=${expires.toUTCString()}` });
      }
      const state = liveSession(req);
      if (path === `/${db}/_session` && req.method === 'GET') {
        if (state === 'live') return json(res, 200, sessionInfo(options.username));
        return json(res, 401, { error: 'Unauthorized', reason: state === 'dead' ? 'Session Invalid' : 'Login required' });
      }
      if (!path.startsWith(`/${db}/`)) return json(res, 404, { error: 'not_found', reason: 'no such database' });
      const status = state === 'live' ? 200 : 401;
      seen.push({ path, cookie: req.headers.cookie, authorization: req.headers.authorization, status });
      if (state === 'live') return json(res, 200, { _id: path.slice(db.length + 2), _rev: '1-5f0e1ba9d8c2f0b3', channels: ['!'] });
      return json(res, 401, { error: 'Unauthorized', reason: state === 'dead' ? 'Session Invalid' : 'Login required' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    db,
    logins: () => logins,
    refusedForms: () => refusedForms,
    issued: () => [...issued],
    current: () => ({ cookie: newest?.cookie, expires: newest?.expires }),
    seen: () => [...seen],
    invalidateAll: () => {
      epoch++;
    },
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
