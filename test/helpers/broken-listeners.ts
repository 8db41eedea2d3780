/**
 * Backends that fail at the connection, before any HTTP: faults no real CouchDB-compatible
 * server produces on demand.
 *
 * - A SCRIPTED listener that resets (RST) every connection it accepts, as a backend being killed
 *   or a middlebox dropping state does.
 * - A real process that is frozen: it listens with an accept backlog of 1, stops itself with
 *   SIGSTOP, and two connections fill its accept queue. The kernel then drops further SYNs, so a
 *   connect to it hangs until the client gives up, as one to a stopped or swapping backend does.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';

export interface BrokenListener {
  url: string;
  stop(): Promise<void>;
}

/** A SCRIPTED listener on a free loopback port that answers every connection with a reset. */
export async function startResettingListener(): Promise<BrokenListener & { connections(): number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.on('error', () => undefined);
    socket.resetAndDestroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    connections: () => count,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const FROZEN = `const s = require('node:net').createServer();
s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  console.log(s.address().port);
  process.kill(process.pid, 'SIGSTOP');
});`;

/** A stopped process on a free loopback port whose accept queue is full: connects to it hang. */
export async function startFrozenListener(): Promise<BrokenListener> {
  const child = spawn(process.execPath, ['-e', FROZEN], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => [Buffer.from('')])])) as [Buffer];
  const port = Number(line.toString().trim());
  if (!port) throw new Error('the frozen listener exited before it printed its port');
  // Linux queues backlog + 1 connections the process has not accepted; it is stopped, so these stay.
  const fillers: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
    await once(socket, 'connect');
  }
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      for (const socket of fillers) socket.destroy();
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}
