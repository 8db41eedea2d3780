/**
 * An upstream for nginx that answers every request with the Cookie and X-Generation headers it
 * received, as JSON. It is a measuring instrument, not a backend: it shows byte for byte what
 * nginx sends upstream after expanding `proxy_set_header Cookie $auth_cookie`.
 */
import { createServer, type Server } from 'node:http';

export interface HeaderEcho {
  url: string;
  stop(): Promise<void>;
}

/** What the echo saw on one request. */
export interface Echoed {
  cookie: string | null;
  generation: string | null;
}

/** Starts the echo on a free loopback port. */
export async function startHeaderEcho(): Promise<HeaderEcho> {
  const server: Server = createServer((req, res) => {
    const body: Echoed = { cookie: req.headers.cookie ?? null, generation: (req.headers['x-generation'] as string | undefined) ?? null };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** GETs `url` (through nginx) until the upstream saw `generation`; returns what it saw then. */
export async function upstreamSaw(url: string, generation: number, timeoutMs = 10_000): Promise<Echoed> {
  const deadline = Date.now() + timeoutMs;
  let last: Echoed | string = '';
  while (Date.now() < deadline) {
    last = await fetch(url).then((r) => r.json() as Promise<Echoed>, (e: Error) => e.message);
    if (typeof last === 'object' && last.generation === String(generation)) return last;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the upstream never saw generation ${generation}; last: ${JSON.stringify(last)}`);
}
