/**
 * A SCRIPTED CouchDB-like backend, not a real one: POST /_session mints an AuthSession cookie,
 * GET /_session says whether a cookie is still the current one, every other request needs the
 * current cookie (else 401) and is answered with the number of
 * body bytes it received and their sha256. Used where a real server cannot help: streaming a
 * 64 MB body (pouchdb-server would buffer it) and counting exactly what arrived.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';

export interface ScriptedCouch {
  url: string;
  logins(): number;
  /** Invalidates every cookie minted so far, as a restart with a new secret would. */
  rotate(): void;
  /** Attributes appended to the Set-Cookie of later logins, e.g. "; Max-Age=0" (default none). */
  setCookieAttributes(attributes: string): void;
  /** Milliseconds an authorized (non-login) request waits before it is answered (default 0). */
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

export async function startScriptedCouch(user: string, password: string): Promise<ScriptedCouch> {
  let epoch = 0;
  let logins = 0;
  const cookieFor = (e: number) => Buffer.from(`${user}:${Math.floor(Date.now() / 1000).toString(16).toUpperCase()}:epoch${e}`).toString('base64url');
  let current = '';
  let attributes = '';
  let delayMs = 0;
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    const login = req.method === 'POST' && req.url === '/_session';
    let form = '';
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (login) form += chunk.toString('latin1');
      else hash.update(chunk);
    });
    req.on('end', () => {
      if (login) {
        const fields = new URLSearchParams(form);
        if (fields.get('name') !== user || fields.get('password') !== password) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized","reason":"Name or password is incorrect."}');
          return;
        }
        logins++;
        current = cookieFor(epoch);
        res.writeHead(200, { 'set-cookie': `AuthSession=${current}; Version=1; Path=/; HttpOnly${attributes}`, 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, name: user, roles: ['_admin'] }));
        return;
      }
      const cookie = /AuthSession=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
      if (req.method === 'GET' && req.url === '/_session') {
        // As CouchDB: 200 either way, with the user's name only for a cookie it still accepts.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, userCtx: { name: cookie && cookie === current ? user : null, roles: [] } }));
        return;
      }
      if (!cookie || cookie !== current) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Cookie' });
        res.end('{"error":"unauthorized","reason":"You are not a server admin."}');
        return;
      }
      const answer = JSON.stringify({ bytes, sha256: hash.digest('hex') });
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': `AuthSession=${current}; Path=/` });
        res.end(answer);
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    logins: () => logins,
    rotate: () => {
      epoch++;
      current = '';
    },
    setCookieAttributes: (a) => (attributes = a),
    setDelay: (ms) => (delayMs = ms),
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
