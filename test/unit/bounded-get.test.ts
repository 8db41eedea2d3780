/**
 * The probe's GET against a scripted HTTP server on loopback (scripted: it produces on demand
 * the faults no real backend does: an oversized or endless body, a stall, a connection cut
 * mid-answer).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { boundedGet, GetFailedError } from '../../src/session/bounded-get.js';

const LIMIT = 1024;

describe('boundedGet', () => {
  let server: http.Server;
  let base: string;
  const seen: http.IncomingHttpHeaders[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      seen.push(req.headers);
      switch (req.url) {
        case '/ok':
          res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['AuthSession=abc; Path=/', 'other=1'], date: 'Sun, 06 Dec 2026 10:00:00 GMT' });
          res.end('{"userCtx":{"name":"admin"}}');
          return;
        case '/announced':
          res.writeHead(200, { 'content-length': String(LIMIT * 10) });
          res.write('x'.repeat(100));
          return;
        case '/endless': {
          res.writeHead(200, { 'content-type': 'text/plain' });
          const timer = setInterval(() => res.write('y'.repeat(512)), 1);
          res.on('close', () => clearInterval(timer));
          return;
        }
        case '/stall':
          return;
        case '/cut':
          res.writeHead(200, { 'content-length': '100' });
          res.write('partial', () => res.socket?.destroy());
          return;
        default:
          res.writeHead(302, { location: '/ok' });
          res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const get = (path: string, timeoutMs = 2000) => boundedGet(new URL(base + path), { headers: { cookie: 'AuthSession=x', accept: 'application/json' }, timeoutMs, maxBytes: LIMIT });

  it('returns the status, the Set-Cookie headers, the Date and the body, and sends the headers it was given', async () => {
    const answer = await get('/ok');
    assert.ok(!('cut' in answer));
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.headers['set-cookie'], ['AuthSession=abc; Path=/', 'other=1']);
    assert.equal(answer.headers.date, 'Sun, 06 Dec 2026 10:00:00 GMT');
    assert.equal(answer.body, '{"userCtx":{"name":"admin"}}');
    const headers = seen.at(-1)!;
    assert.equal(headers.cookie, 'AuthSession=x');
    assert.equal(headers['accept-encoding'], undefined, 'no compressed body is asked for');
  });

  it('does not follow a redirect', async () => {
    const answer = await get('/elsewhere');
    assert.ok(!('cut' in answer));
    assert.equal(answer.status, 302);
  });

  it('refuses a body whose Content-Length is over the limit without reading it', async () => {
    assert.deepEqual(await get('/announced'), { cut: { announced: LIMIT * 10 } });
  });

  it('cuts a body that never ends once it passes the limit', async () => {
    assert.deepEqual(await get('/endless'), { cut: { announced: undefined } });
  });

  it('gives up on a backend that never answers after the timeout, with ETIMEDOUT', async () => {
    await assert.rejects(get('/stall', 200), (error: unknown) => error instanceof GetFailedError && error.code === 'ETIMEDOUT');
  });

  it('fails with ECONNRESET when the connection is cut before the answer is whole', async () => {
    await assert.rejects(get('/cut'), (error: unknown) => error instanceof GetFailedError && error.code === 'ECONNRESET');
  });

  it('fails with the system\'s code when nothing listens', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(boundedGet(new URL(`http://127.0.0.1:${port}/`), { headers: {}, timeoutMs: 2000, maxBytes: LIMIT }), (error: unknown) => error instanceof GetFailedError && error.code === 'ECONNREFUSED');
  });
});
