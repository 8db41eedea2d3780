/**
 * A plain real nginx that spreads requests round-robin over several backends, as a load
 * balancer in front of a CouchDB cluster would. No session handling: it stands between
 * session-refresher's nginx (and the daemon) and the backends.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nginxBinary } from './nginx.js';
import { startNginxProcess, tempPaths } from './nginx-process.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

export interface Balancer {
  url: string;
  stop(): Promise<void>;
}

/** Starts nginx on a free loopback port with `backends` (http://host:port) in one round-robin upstream. */
export async function startBalancer(backends: string[]): Promise<Balancer> {
  const binary = nginxBinary();
  if (!binary) throw new Error('nginx is not installed');
  const dir = await tempDir('sr-balancer-');
  const port = await freePort();
  const confPath = join(dir.path, 'nginx.conf');
  const servers = backends.map((b) => `    server ${new URL(b).host} max_fails=0;`).join('\n');
  await writeFile(
    confPath,
    `daemon off;
worker_processes 1;
pid ${join(dir.path, 'nginx.pid')};
error_log ${join(dir.path, 'error.log')} notice;
events { worker_connections 1024; }
http {
  access_log off;
${tempPaths(dir.path)}
  upstream backends {
${servers}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # A 401 or 5xx is an answer to pass on, never a reason to try the next backend.
      proxy_next_upstream off;
    }
  }
}
`,
  );
  const url = `http://127.0.0.1:${port}`;
  const proc = await startNginxProcess(binary, dir.path, confPath, () =>
    fetch(`${url}/`).then(
      () => true,
      () => false,
    ),
  );
  return {
    url,
    async stop() {
      await proc.stop();
      await dir.remove();
    },
  };
}
