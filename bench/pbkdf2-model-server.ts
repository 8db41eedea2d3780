/**
 * A MODEL of CouchDB 3.4's password check, not CouchDB: a scripted HTTP backend for bench
 * figure 7. A request with Basic credentials is checked as CouchDB 3.4 checks it
 * (bench/lib/passwords-cache.ts): PBKDF2-SHA256 with 600,000 iterations (3.4's default for new
 * hashes) unless `couch_passwords_cache` holds the user, then 5 iterations. `POST /_session`
 * checks the password the same way and issues an HMAC-signed `AuthSession` cookie (Max-Age
 * 600); a request carrying a valid cookie is answered without a password check. It models the
 * cost of the checks only, nothing else of CouchDB.
 *
 * Run as its own process so its hashing threads are not the benchmark's:
 *   MODEL_PASSWORD=... node pbkdf2-model-server.js [--users N] [--cache on|off] [--max-objects N] [--max-idle-ms N]
 *   -> prints "listening <port>" on stdout
 * Users are "admin", then "user2" ... "userN", each with its own salt and the same password.
 * `GET /_bench_counts` answers what it counted; `POST /_bench_reset` empties the cache (as a
 * restart of the node would) and zeroes the counts.
 */
import { createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { COUCH_DEFAULTS, FAST_ITERATIONS, PasswordsCache } from './lib/passwords-cache.js';

export const ITERATIONS = 600_000;
const TIMEOUT_SECONDS = 600;

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1' },
    cache: { type: 'string', default: 'on' },
    'max-objects': { type: 'string', default: String(COUCH_DEFAULTS.maxObjects) },
    'max-idle-ms': { type: 'string', default: String(COUCH_DEFAULTS.maxIdleMs) },
  },
});
const password = process.env.MODEL_PASSWORD ?? 'secret';
const userCount = Number(values.users);
const cache = new PasswordsCache({ enable: values.cache === 'on', maxObjects: Number(values['max-objects']), maxIdleMs: Number(values['max-idle-ms']) });
const secret = randomBytes(32);
const zero = () => ({ slowChecks: 0, fastChecks: 0, basicOk: 0, sessions: 0, cookie: 0, unauthorized: 0 });
let counts = zero();

const slowHash = (candidate: string, salt: Buffer): Promise<Buffer> =>
  new Promise((resolve, reject) => pbkdf2(candidate, salt, ITERATIONS, 32, 'sha256', (e, key) => (e ? reject(e) : resolve(key))));
// Five iterations take microseconds: computed inline, as CouchDB does in the request's process.
const fastHash = (candidate: string, salt: Buffer): Buffer => pbkdf2Sync(candidate, salt, FAST_ITERATIONS, 32, 'sha256');

interface User {
  salt: Buffer;
  stored: Buffer;
}
const users = new Map<string, User>();
for (let i = 1; i <= userCount; i++) {
  const salt = randomBytes(16);
  users.set(i === 1 ? 'admin' : `user${i}`, { salt, stored: await slowHash(password, salt) });
}
const unknownSalt = randomBytes(16);
const unknownStored = randomBytes(32);

/** CouchDB 3.4's check: the cache first; on a miss the stored hash, and a success fills the cache. */
async function passwordOk(name: string, candidate: string): Promise<boolean> {
  const user = users.get(name);
  const salt = user?.salt ?? unknownSalt;
  const cached = cache.lookup(name, salt);
  if (cached) {
    counts.fastChecks++;
    return timingSafeEqual(cached, fastHash(candidate, salt));
  }
  counts.slowChecks++;
  // The slow hash runs for an unknown name too, so timing does not tell names apart.
  const ok = timingSafeEqual(await slowHash(candidate, salt), user?.stored ?? unknownStored) && user !== undefined;
  if (ok) cache.insert(name, salt, fastHash(candidate, salt));
  return ok;
}

function sign(name: string, issued: number): string {
  const payload = `${name}:${issued.toString(16).toUpperCase()}`;
  const mac = createHmac('sha1', secret).update(payload).digest();
  return Buffer.concat([Buffer.from(`${payload}:`), mac]).toString('base64url');
}

function cookieOk(header: string | undefined): boolean {
  const m = /(?:^|;\s*)AuthSession=([A-Za-z0-9_-]+)/.exec(header ?? '');
  if (!m) return false;
  const raw = Buffer.from(m[1]!, 'base64url');
  const cut = raw.lastIndexOf(':'.charCodeAt(0), raw.length - 21);
  if (cut < 0) return false;
  const payload = raw.subarray(0, cut).toString();
  const [name = '', issuedHex = ''] = payload.split(':');
  const issued = parseInt(issuedHex, 16);
  if (!Number.isFinite(issued) || issued + TIMEOUT_SECONDS < Date.now() / 1000) return false;
  const expected = createHmac('sha1', secret).update(`${name}:${issuedHex}`).digest();
  const mac = raw.subarray(cut + 1);
  return mac.length === expected.length && timingSafeEqual(mac, expected);
}

const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
};

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    void (async () => {
      if (req.url === '/_bench_counts') return send(res, 200, { ...counts, cached: cache.size });
      if (req.method === 'POST' && req.url === '/_bench_reset') {
        cache.clear();
        counts = zero();
        return send(res, 200, { ok: true });
      }
      if (req.method === 'POST' && req.url === '/_session') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        const name = form.get('name') ?? '';
        counts.sessions++;
        if (!(await passwordOk(name, form.get('password') ?? ''))) return send(res, 401, { error: 'unauthorized', reason: 'Name or password is incorrect.' });
        const issued = Math.floor(Date.now() / 1000);
        return send(res, 200, { ok: true, name, roles: ['_admin'] }, { 'set-cookie': `AuthSession=${sign(name, issued)}; Version=1; Path=/; HttpOnly; Max-Age=${TIMEOUT_SECONDS}` });
      }
      const auth = req.headers.authorization ?? '';
      if (auth.startsWith('Basic ')) {
        const decoded = Buffer.from(auth.slice(6), 'base64').toString();
        const at = decoded.indexOf(':');
        if (at > 0 && (await passwordOk(decoded.slice(0, at), decoded.slice(at + 1)))) {
          counts.basicOk++;
          return send(res, 200, 'info');
        }
      } else if (cookieOk(req.headers.cookie)) {
        counts.cookie++;
        return send(res, 200, 'info');
      }
      counts.unauthorized++;
      return send(res, 401, { error: 'unauthorized', reason: 'You are not a server admin.' });
    })().catch(() => send(res, 500, { error: 'internal' }));
  });
});
// Longer than nginx's upstream keepalive_timeout (60 s), so nginx never reuses a closed socket.
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
