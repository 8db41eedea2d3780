/**
 * A real CouchDB-compatible server for tests: pouchdb-server, in memory, on a free loopback
 * port, with one server admin. Its request log (stdout) lets tests count logins at the backend.
 * It runs in a temp directory: pouchdb-server writes config.json and log.txt into its working
 * directory, and the tests, the demo and the bench all start it through here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { LineWatcher } from './lines.js';
import { ROOT } from './paths.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

export interface Couch {
  url: string;
  port: number;
  admin: { name: string; password: string };
  /** Successful logins (POST /_session 200) logged so far. */
  logins(): number;
  /** All POST /_session attempts logged so far, whatever their status. */
  loginAttempts(): number;
  /** Request log lines so far (pouchdb-server's "METHOD /path STATUS ..." lines). */
  requestLog(): readonly string[];
  /** Waits until every request made before this call has been logged (a sentinel request). */
  settle(): Promise<void>;
  /** Changes the cookie secret: every issued AuthSession cookie stops working at once. */
  rotateSecret(): Promise<void>;
  /** Changes the admin's password on the backend (invalidates nothing else). */
  setAdminPassword(password: string): Promise<void>;
  stop(): Promise<void>;
}

const LOGIN_OK = /\bPOST \/_session 200\b/;
const LOGIN_ANY = /\bPOST \/_session \d{3}\b/;

/** Starts pouchdb-server and creates the admin. */
export async function startCouch(admin = { name: 'admin', password: 's3cret-admin' }, port?: number): Promise<Couch> {
  const dir = await tempDir('sr-couch-');
  const chosen = port ?? (await freePort());
  const child: ChildProcess = spawn(process.execPath, [`${ROOT}node_modules/pouchdb-server/bin/pouchdb-server`, '--in-memory', '--host', '127.0.0.1', '--port', String(chosen), '--config', `${dir.path}/config.json`], {
    cwd: dir.path,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = new LineWatcher(child.stdout!);
  const exited = once(child, 'exit');
  let failedAtStart: (e: Error) => void = () => undefined;
  const early = new Promise<never>((_, reject) => (failedAtStart = reject));
  const onEarlyExit = () => failedAtStart(new Error(`pouchdb-server exited at start:\n${out.lines.join('\n')}`));
  child.once('exit', onEarlyExit);
  await Promise.race([out.waitFor(/has started on/, 30_000, 'pouchdb-server to start'), early]);
  child.off('exit', onEarlyExit);
  const url = `http://127.0.0.1:${chosen}`;
  let sentinel = 0;
  const couch: Couch = {
    url,
    port: chosen,
    admin: { ...admin },
    logins: () => out.count(LOGIN_OK),
    loginAttempts: () => out.count(LOGIN_ANY),
    requestLog: () => out.lines,
    async settle() {
      const path = `/_sentinel_${process.pid}_${++sentinel}`;
      await fetch(url + path).then((r) => r.arrayBuffer());
      await out.waitFor(new RegExp(`GET ${path} `), 10_000, 'the backend to log a sentinel request');
    },
    async rotateSecret() {
      const auth = `Basic ${Buffer.from(`${couch.admin.name}:${couch.admin.password}`).toString('base64')}`;
      const secret = `secret-${Date.now()}-${Math.random().toString(36).slice(2)}`;
      const res = await fetch(`${url}/_config/couch_httpd_auth/secret`, { method: 'PUT', body: JSON.stringify(secret), headers: { authorization: auth } });
      if (!res.ok) throw new Error(`rotating the secret answered ${res.status}: ${await res.text()}`);
    },
    async setAdminPassword(password: string) {
      const auth = `Basic ${Buffer.from(`${couch.admin.name}:${couch.admin.password}`).toString('base64')}`;
      const res = await fetch(`${url}/_config/admins/${couch.admin.name}`, { method: 'PUT', body: JSON.stringify(password), headers: { authorization: auth } });
      if (!res.ok) throw new Error(`setting the admin password answered ${res.status}: ${await res.text()}`);
      couch.admin.password = password;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await dir.remove();
    },
  };
  const res = await fetch(`${url}/_config/admins/${admin.name}`, { method: 'PUT', body: JSON.stringify(admin.password) });
  if (!res.ok) throw new Error(`creating the admin answered ${res.status}: ${await res.text()}`);
  return couch;
}
