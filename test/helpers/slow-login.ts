/**
 * An instrument in front of a real backend: forwards every request to it unchanged, but holds
 * `POST .../_session` (a login) for `delayMs` first, as a backend busy hashing a password
 * would. Not a scripted server: every answer is the backend's own.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export interface SlowLogin {
  url: string;
  /** How long a login is held before it is forwarded (0: not at all). */
  delayMs: number;
  stop(): Promise<void>;
}

export async function startSlowLogin(backend: string): Promise<SlowLogin> {
  const target = new URL(backend);
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const forward = () => {
      const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    const login = req.method === 'POST' && /\/_session(\?|$)/.test(req.url ?? '');
    if (login && slow.delayMs > 0) {
      req.pause();
      void delay(slow.delayMs).then(() => {
        req.resume();
        forward();
      });
    } else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const slow: SlowLogin = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    delayMs: 0,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
  return slow;
}
