/**
 * A SCRIPTED backend, not a real one: a raw TCP server that answers `/_session` with exactly
 * the bytes a test gives it. Used only for faults no real CouchDB-compatible server produces
 * on demand: a hostile Set-Cookie, a 500, a stall, a reason that echoes the request, a body
 * that never ends. It counts the requests it received.
 */
import { createServer, type Socket } from 'node:net';

/** What the script sees of a request: the request line, the raw header lines, and the body (by Content-Length). */
export interface ScriptedRequest {
  method: string;
  path: string;
  headers: string;
  body: string;
}

/**
 * The answer: bytes to send before closing, 'stall' (never answer), or a function that takes the
 * socket over (to stream an endless body, say).
 */
export type Script = (request: ScriptedRequest) => string | Buffer | 'stall' | ((socket: Socket) => void);

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
    let received = '';
    let answered = false;
    socket.on('data', (chunk) => {
      if (answered) return;
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [requestLine = '', ...rest] = received.slice(0, end).split('\r\n');
      const length = Number(/^content-length:\s*(\d+)\s*$/im.exec(rest.join('\n'))?.[1] ?? 0);
      const body = received.slice(end + 4);
      if (body.length < length) return;
      const [method = '', path = ''] = requestLine.split(' ');
      count++;
      answered = true;
      const answer = script({ method, path, headers: rest.join('\n'), body: body.slice(0, length) });
      if (answer === 'stall') return;
      if (typeof answer === 'function') answer(socket);
      else socket.end(typeof answer === 'string' ? Buffer.from(answer, 'latin1') : answer);
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
