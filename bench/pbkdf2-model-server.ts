/**
 * A MODEL of CouchDB 3.4's default password check, not CouchDB: a scripted HTTP backend for
 * bench figure 7. Every request with Basic credentials runs PBKDF2-SHA256 with 600,000
 * iterations (CouchDB 3.4's default for new password hashes) before it answers, with no cache;
 * `POST /_session` checks the password the same way once and issues an HMAC-signed
 * `AuthSession` cookie (Max-Age 600); a request carrying a valid cookie answers at once.
 * It models the cost of the check only, nothing else of CouchDB.
 *
 * Run as its own process so its hashing threads are not the benchmark's:
 *   node pbkdf2-model-server.js USER PASSWORD   -> prints "listening <port>" on stdout
 */
import { createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

export const ITERATIONS = 600_000;
const TIMEOUT_SECONDS = 600;

const [user = 'admin', password = 'secret'] = process.argv.slice(2);
const salt = randomBytes(16);
const secret = randomBytes(32);
const counts = { basic: 0, sessions: 0, cookie: 0, unauthorized: 0 };

const derive = (candidate: string): Promise<Buffer> =>
  new Promise((resolve, reject) => pbkdf2(candidate, salt, ITERATIONS, 32, 'sha256', (e, key) => (e ? reject(e) : resolve(key))));

const stored = await derive(password);

async function passwordOk(name: string, candidate: string): Promise<boolean> {
  // The hash runs whatever the name, as a real check would.
  const key = await derive(candidate);
  return name === user && timingSafeEqual(key, stored);
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
      if (req.url === '/_bench_counts') return send(res, 200, counts);
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
        counts.basic++;
        const decoded = Buffer.from(auth.slice(6), 'base64').toString();
        const at = decoded.indexOf(':');
        if (at > 0 && (await passwordOk(decoded.slice(0, at), decoded.slice(at + 1)))) return send(res, 200, 'info');
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
