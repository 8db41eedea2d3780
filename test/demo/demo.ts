/**
 * `npm run demo`: session-refresher end to end on this machine, in about twenty seconds.
 * Starts a CouchDB-compatible backend (pouchdb-server, in memory, 6 s session timeout), a real
 * nginx built from the shipped snippets in a temp prefix, and the daemon; shows the first login,
 * a request through nginx, the backend expiring the session, the 401 caught and replayed, the
 * generation bumping, and `status`. Cleans up everything it started, also on Ctrl-C.
 *
 *   npm run demo                      # needs Node and nginx
 *   npm run demo -- --install-nginx   # as root: apt-get install nginx first if it is missing
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { runCli } from '../helpers/cli.js';
import { startCouch, type Couch } from '../helpers/couch.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { writeDaemonConfig } from '../helpers/daemon-config.js';
import { nginxBinary, placeholderInclude, startNginx, type Nginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

const BACKEND_TIMEOUT = 6;
const say = (text = '') => process.stdout.write(`${text}\n`);
const step = (n: number, text: string) => say(`\n${n}. ${text}`);

function ensureNginx(): boolean {
  if (nginxBinary()) return true;
  const asRoot = process.getuid?.() === 0;
  if (process.argv.includes('--install-nginx') && asRoot) {
    say('nginx is missing: installing Debian\'s nginx with apt-get ...');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nginx'], { stdio: 'inherit', env }) : update;
    if (install.status === 0 && nginxBinary()) return true;
    say('demo: installing nginx failed; install it by hand: apt-get install nginx');
    return false;
  }
  say('demo: nginx is not installed. Install it with `sudo apt-get install nginx`,');
  say(`      or run \`npm run demo -- --install-nginx\` as root${asRoot ? '' : ' (you are not root)'}.`);
  return false;
}

async function main(): Promise<number> {
  if (!ensureNginx()) return 69;
  const dir = await tempDir('session-refresher-demo-');
  let couch: Couch | undefined;
  let nginx: Nginx | undefined;
  let daemon: Daemon | undefined;
  const cleanup = async () => {
    await daemon?.stop();
    await nginx?.stop();
    await couch?.stop();
    await dir.remove();
  };
  const onSignal = () => void cleanup().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    say('session-refresher demo: everything runs on 127.0.0.1 and in a temp directory that is removed at the end.');

    step(1, 'Starting a CouchDB-compatible backend (pouchdb-server, in memory).');
    couch = await startCouch({ name: 'admin', password: 'demo-password' });
    const adminAuth = `Basic ${Buffer.from('admin:demo-password').toString('base64')}`;
    await fetch(`${couch.url}/_config/couch_httpd_auth/timeout`, { method: 'PUT', body: JSON.stringify(String(BACKEND_TIMEOUT)), headers: { authorization: adminAuth } });
    say(`   ${couch.url}, admin "admin"; its sessions expire after ${BACKEND_TIMEOUT} s.`);

    step(2, 'Starting nginx in front of it, built from the shipped snippets (nginx/*.template).');
    const include = join(dir.path, 'couch.conf');
    await writeFile(include, placeholderInclude(), { mode: 0o640 });
    await mkdir(join(dir.path, 'nginx'));
    const fallback = `127.0.0.1:${await freePort()}`;
    nginx = await startNginx({ prefix: join(dir.path, 'nginx'), include, backend: couch.url, fallback });
    say(`   ${nginx.url}; nginx sends Cookie: $auth_cookie upstream, and sends 401s to ${fallback}.`);
    const anonymous = await fetch(`${couch.url}/_config`);
    say(`   Without a session the backend answers GET /_config with ${anonymous.status}: it wants an admin.`);

    step(3, 'Starting the daemon: session-refresher run.');
    // session-refresher is told CouchDB's default lifetime (600 s); the backend drops the
    // session after 6 s, as a restart or a shortened timeout would.
    const { configPath } = await writeDaemonConfig({
      dir: dir.path,
      nginx,
      fallback,
      url: couch.url,
      username: 'admin',
      password: 'demo-password',
      include,
      minRefreshInterval: 1,
      verifyUrl: nginx.probeUrl,
    });
    daemon = await startDaemon(configPath);
    await nginx.waitForGeneration(1);
    say(`   It logged in once (POST /_session), wrote ${include} (mode 0640),`);
    say('   checked it with nginx -t and reloaded nginx: nginx serves generation 1.');

    step(4, 'A client request through nginx, with no credentials of its own.');
    const t1 = Date.now();
    const first = await fetch(`${nginx.url}/_config`);
    say(`   GET /_config -> ${first.status} in ${Date.now() - t1} ms: nginx sent the session cookie; no password hashing per request.`);

    step(5, `Waiting for the backend to expire the session (${BACKEND_TIMEOUT} s) ...`);
    const cookie = /"(AuthSession=[^"]+)"/.exec(await readFile(include, 'utf8'))![1]!;
    for (;;) {
      const res = await fetch(`${couch.url}/_config`, { headers: { cookie } });
      if (res.status === 401) break;
      await delay(250);
    }
    say('   The backend now refuses the cookie nginx holds.');

    step(6, 'The same request again.');
    const mark = daemon.mark();
    const t2 = Date.now();
    const second = await fetch(`${nginx.url}/_config`);
    const took = Date.now() - t2;
    const replayed = await daemon.waitForMsgAfter(mark, /fallback: request replayed/);
    say(`   GET /_config -> ${second.status} in ${took} ms. Behind the scenes: the backend answered 401, nginx handed the`);
    say(`   request to session-refresher, which logged in once and replayed it (outcome: ${String(replayed.outcome)}).`);
    say('   The client never saw the 401.');

    step(7, 'The generation bumped.');
    await nginx.waitForGeneration(2);
    say(`   nginx now serves generation ${await nginx.generation()}; later requests carry the new cookie directly.`);

    step(8, 'session-refresher status');
    const status = await runCli(['status', '--config', configPath]);
    say(`   ${status.stdout.trim()}`);

    step(9, 'Stopping everything.');
    const code = await daemon.stop();
    daemon = undefined;
    say(`   The daemon drained and exited ${code}; nginx and the backend stopped; ${dir.path} removed.`);
    return 0;
  } catch (error) {
    say(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

process.exitCode = await main();
