/**
 * A SCRIPTED backend, not a real one: a raw TCP server that answers `/_session` with exactly
 * the bytes a test gives it. Used only for faults no real CouchDB-compatible server produces
 * on demand: a hostile Set-Cookie, a 500, a stall. It counts the requests it received.
 */
import { createServer, type Socket } from 'node:net';

export type Script = (request: { method: string; path: string; headers: string }) => string | Buffer | 'stall';

export interface ScriptedBackend {
  url: string;
  /** Requests received so far. */
  requests(): number;
  /** Replaces the script for the following requests. */
  setScript(script: Script): void;
  stop(): Promise<void>;
}

/** A complete HTTP/1.1 response with the given status line, headers (raw lines) and JSON body. */
export function rawResponse(status: string, headerLines: string[], body = '{"ok":true}'): string {
  return [`HTTP/1.1 ${status}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', ...headerLines, '', body].join('\r\n');
}

/** Starts the scripted backend on a free loopback port. */
export async function startScriptedBackend(initial: Script): Promise<ScriptedBackend> {
  let script = initial;
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [requestLine = '', ...rest] = head.slice(0, end).split('\r\n');
      const [method = '', path = ''] = requestLine.split(' ');
      count++;
      const answer = script({ method, path, headers: rest.join('\n') });
      head = '';
      if (answer === 'stall') return;
      socket.end(typeof answer === 'string' ? Buffer.from(answer, 'latin1') : answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests: () => count,
    setScript: (s) => (script = s),
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
