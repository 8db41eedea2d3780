/**
 * The shipped nginx kit (nginx/*.template, filled by `session-refresher nginx-snippet`) in a
 * real nginx: it passes `nginx -t` in every variant, hides the backend's Set-Cookie from
 * clients, and refuses client access to /_session.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { kitAgreement } from '../../src/commands/check-kit.js';
import { validateConfig } from '../../src/config/validate.js';
import { directiveValues, parseNginxTime, stripComments } from '../../src/nginx/directives.js';
import { runCli } from '../helpers/cli.js';
import { startCouch } from '../helpers/couch.js';
import { startDaemon } from '../helpers/daemon.js';
import { startScriptedCouch } from '../helpers/scripted-couch.js';
import { startScriptedStack } from '../helpers/scripted-stack.js';
import { nginxBinary, placeholderInclude, skipWithoutNginx, startNginx, type Nginx } from '../helpers/nginx.js';
import { ROOT } from '../helpers/paths.js';
import { rawResponse, startScriptedBackend, type ScriptedBackend } from '../helpers/scripted-backend.js';
import { tempDir } from '../helpers/tmp.js';

const skip = skipWithoutNginx();

/** Writes a config, runs nginx-snippet for it, and returns the two parts. */
async function snippets(dir: string, session: Record<string, unknown>, daemon: Record<string, unknown>, extra: string[] = []): Promise<{ http: string; server: string; code: number | null; stderr: string }> {
  const configPath = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(configPath, stringify({ state_dir: join(dir, 'state'), daemon, sessions: [{ username: 'svc', password_env: 'UNUSED', ...session }] }));
  // As the install steps do: --placeholder also makes the fallback key the server part includes.
  await mkdir(join(dir, 'state'), { recursive: true });
  if (!extra.includes('--no-fallback')) await runCli(['nginx-snippet', '--config', configPath, '--part', 'placeholder', '--placeholder']);
  const http = await runCli(['nginx-snippet', '--config', configPath, '--part', 'http', ...extra]);
  const server = await runCli(['nginx-snippet', '--config', configPath, '--part', 'server', ...extra]);
  return { http: http.stdout, server: server.stdout, code: http.code ?? server.code, stderr: http.stderr + server.stderr };
}

function nginxTest(prefix: string, http: string, server: string): { status: number | null; output: string } {
  const conf = join(prefix, 'nginx.conf');
  const text = `pid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log;\nevents {}\nhttp {\n${http}\nserver {\nlisten 127.0.0.1:1;\n${server}\n}\n}\n`;
  spawnSync('sh', ['-c', `cat > ${conf}`], { input: text });
  const result = spawnSync(nginxBinary()!, ['-t', '-p', prefix, '-c', conf], { encoding: 'utf8' });
  return { status: result.status, output: result.stderr };
}

describe('the shipped nginx kit', { skip }, () => {
  test('passes nginx -t for http and https backends, a unix-socket fallback, and without the fallback', async () => {
    const dir = await tempDir('sr-kit-');
    try {
      const include = join(dir.path, 'couch.conf');
      await writeFile(include, placeholderInclude());
      // Any real CA certificate will do for nginx -t: take one of Node's bundled roots.
      await writeFile(join(dir.path, 'ca.pem'), `${rootCertificates[0]}\n`);
      const variants: [string, Record<string, unknown>, Record<string, unknown>, string[]][] = [
        ['http backend, TCP fallback', { name: 'couch', url: 'http://127.0.0.1:5984', include }, { listen: '127.0.0.1:8981' }, []],
        ['https backend with ca_file', { name: 'cloudant', url: 'https://localhost:6984', include, ca_file: join(dir.path, 'ca.pem') }, {}, []],
        ['unix-socket fallback', { name: 'couch-2', url: 'http://[::1]:5984', include, variable: 'couch_cookie' }, { listen: 'unix:/run/session-refresher/fallback.sock' }, []],
        ['no fallback (cron only)', { name: 'couch', url: 'http://localhost:5984', include }, {}, ['--no-fallback']],
      ];
      for (const [name, session, daemon, extra] of variants) {
        const out = await snippets(dir.path, session, daemon, extra);
        assert.equal(out.code, 0, `${name}: ${out.stderr}`);
        if (session.variable) await writeFile(include, placeholderInclude(String(session.variable)));
        else await writeFile(include, placeholderInclude());
        const result = nginxTest(dir.path, out.http, out.server);
        assert.equal(result.status, 0, `${name}: nginx -t said:\n${result.output}\n--- server part:\n${out.server}`);
        if (extra.includes('--no-fallback')) assert.doesNotMatch(out.server, /@session_refresh|error_page/);
        else assert.match(out.server, /error_page 401 = @session_refresh;/);
      }
    } finally {
      await dir.remove();
    }
  });

  test('nginx.conf.example passes nginx -t with generated parts in place of its includes', async () => {
    const dir = await tempDir('sr-kit-');
    try {
      const include = join(dir.path, 'couch.conf');
      await writeFile(include, placeholderInclude());
      const out = await snippets(dir.path, { name: 'couch', url: 'http://127.0.0.1:5984', include }, {});
      await writeFile(join(dir.path, 'couch.http.conf'), out.http);
      await writeFile(join(dir.path, 'couch.server.conf'), out.server);
      const example = (await readFile(join(ROOT, 'nginx', 'nginx.conf.example'), 'utf8'))
        .replaceAll('/etc/nginx/session-refresher/', `${dir.path}/`)
        .replace('listen 80;', 'listen 127.0.0.1:1;');
      const conf = join(dir.path, 'nginx.conf');
      await writeFile(conf, `pid ${dir.path}/nginx.pid;\nerror_log ${dir.path}/error.log;\n${example}`);
      const result = spawnSync(nginxBinary()!, ['-t', '-p', dir.path, '-c', conf], { encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);

      // The example, the generated parts and the daemon's defaults agree, as nginx itself reads them.
      const dump = spawnSync(nginxBinary()!, ['-T', '-q', '-p', dir.path, '-c', conf], { encoding: 'utf8' });
      assert.equal(dump.status, 0, dump.stderr);
      const defaults = validateConfig({ state_dir: join(dir.path, 'state'), sessions: [{ name: 'couch', url: 'http://127.0.0.1:5984', username: 'svc', password_env: 'UNUSED', include }] });
      assert.ok(defaults.ok);
      const shutdown = parseNginxTime(directiveValues(stripComments(dump.stdout), 'worker_shutdown_timeout')[0] ?? '');
      assert.ok(shutdown !== undefined && shutdown >= defaults.config.daemon.replay_timeout, `the example's worker_shutdown_timeout (${shutdown}s) is at least the default daemon.replay_timeout`);
      assert.deepEqual(kitAgreement(defaults.config, dump.stdout).filter((n) => n.warn), [], 'check finds nothing to warn about');
    } finally {
      await dir.remove();
    }
  });

  test('nginx-snippet --placeholder creates a missing include and the fallback key once, and never overwrites either', async () => {
    const dir = await tempDir('sr-kit-');
    try {
      const include = join(dir.path, 'inc', 'couch.conf');
      const keyFile = join(dir.path, 'state', 'fallback-key.conf');
      await mkdir(join(dir.path, 'inc'));
      const configPath = join(dir.path, 'config.yaml');
      await writeFile(configPath, stringify({ state_dir: join(dir.path, 'state'), sessions: [{ name: 'couch', url: 'http://127.0.0.1:5984', username: 'svc', password_env: 'X', include }] }));
      const first = await runCli(['nginx-snippet', '--config', configPath, '--part', 'placeholder', '--placeholder']);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /wrote the placeholder/);
      assert.match(first.stderr, new RegExp(`wrote the fallback key ${keyFile} \\(mode 0640\\)`));
      assert.match(await readFile(include, 'utf8'), /^set \$auth_cookie "";\nset \$auth_cookie_generation "0";$/m);
      const key = await readFile(keyFile, 'utf8');
      assert.ok(!(first.stdout + first.stderr).includes(/"([0-9a-f]{64})"/.exec(key)![1]!), 'the key is never printed');
      await writeFile(include, 'set $auth_cookie "AuthSession=abc";\nset $auth_cookie_generation "4";\n');
      const second = await runCli(['nginx-snippet', '--config', configPath, '--part', 'placeholder', '--placeholder']);
      assert.match(second.stderr, /couch\.conf exists; left as it is/);
      assert.match(second.stderr, /fallback-key\.conf exists; left as it is/);
      assert.match(await readFile(include, 'utf8'), /generation "4"/);
      assert.equal(await readFile(keyFile, 'utf8'), key);
    } finally {
      await dir.remove();
    }
  });

  describe('in front of a backend that sets cookies on every response (SCRIPTED backend: CouchDB re-issues AuthSession on demand only after 10% of its timeout)', () => {
    let dir: Awaited<ReturnType<typeof tempDir>>;
    let backend: ScriptedBackend;
    let nginx: Nginx;
    before(async () => {
      dir = await tempDir('sr-kit-');
      backend = await startScriptedBackend(() => rawResponse('200 OK', ['Set-Cookie: AuthSession=c2VydmljZS1hY2NvdW50; Path=/; HttpOnly', 'Set-Cookie: other=1'], '{"ok":true}'));
      const include = join(dir.path, 'couch.conf');
      await writeFile(include, 'set $auth_cookie "AuthSession=YWJj";\nset $auth_cookie_generation "1";\n');
      await mkdir(join(dir.path, 'nginx'));
      nginx = await startNginx({ prefix: join(dir.path, 'nginx'), include, backend: backend.url });
    });
    after(async () => {
      await nginx?.stop();
      await backend?.stop();
      await dir?.remove();
    });

    test('a client never receives the backend\'s Set-Cookie', async () => {
      for (const path of ['/', '/db/doc', '/_all_dbs?x=1']) {
        const res = await fetch(nginx.url + path);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('set-cookie'), null, `Set-Cookie leaked on ${path}`);
      }
    });

    test('a client request to /_session is refused, however it is spelled', async () => {
      const before = backend.requests();
      for (const [method, path] of [['GET', '/_session'], ['POST', '/_session'], ['DELETE', '/_session'], ['GET', '/_session?basic=true'], ['GET', '//_session'], ['GET', '/%5Fsession']] as const) {
        const res = await fetch(nginx.url + path, { method, ...(method === 'POST' ? { body: 'name=svc&password=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}) });
        assert.equal(res.status, 403, `${method} ${path}`);
      }
      assert.equal(backend.requests(), before, 'none of them reached the backend');
    });
  });
});

/** The example's worker_shutdown_timeout, as written in nginx/nginx.conf.example. */
async function exampleShutdownTimeout(): Promise<string> {
  const example = await readFile(join(ROOT, 'nginx', 'nginx.conf.example'), 'utf8');
  const value = directiveValues(stripComments(example), 'worker_shutdown_timeout')[0];
  assert.ok(value, 'the example sets worker_shutdown_timeout');
  return value;
}

describe('the kit agrees with itself at run time', { skip }, () => {
  test('check warns when the running nginx cuts old workers before daemon.replay_timeout, and is quiet with the example\'s value', async () => {
    const couch = await startCouch();
    try {
      for (const [timeout, warned] of [['10s', true], [await exampleShutdownTimeout(), false]] as const) {
        const stack = await startScriptedStack({ backend: couch.url, username: couch.admin.name, password: couch.admin.password, workerShutdownTimeout: timeout });
        try {
          const run = await stack.cli(['check']);
          assert.equal(run.code, 0, `${timeout}: a warning does not fail the check:\n${run.stdout}${run.stderr}`);
          const line = run.stderr.split('\n').find((l) => l.includes('nginx worker_shutdown_timeout'));
          if (warned) {
            assert.equal(line, `session-refresher: WARN  nginx worker_shutdown_timeout: ${timeout} is shorter than daemon.replay_timeout (60s): a reload cuts replays still running, with no log line; set worker_shutdown_timeout to at least 60s, or lower daemon.replay_timeout`);
            assert.match(run.stdout, /all checks passed \(1 warning\(s\)\)/);
          } else {
            assert.equal(line, undefined, run.stderr);
            assert.match(run.stdout, new RegExp(`ok {2}nginx worker_shutdown_timeout: ${timeout}, not shorter than daemon\\.replay_timeout \\(60s\\)`));
            assert.match(run.stdout, /ok {2}session couch nginx fallback: proxy_read_timeout \d+s in location @session_refresh covers/);
            assert.match(run.stdout, /all checks passed$/m);
          }
        } finally {
          await stack.stop();
        }
      }
    } finally {
      await couch.stop();
    }
  });

  test('a replay still running when its own refresh reloads nginx is cut at 1s, and completes under the example\'s worker_shutdown_timeout (scripted CouchDB that answers in 3 s)', async (t) => {
    const outcomes: Record<string, string> = {};
    for (const timeout of ['1s', await exampleShutdownTimeout()]) {
      const couch = await startScriptedCouch('svc', 'kit-secret');
      const stack = await startScriptedStack({ backend: couch.url, username: 'svc', password: 'kit-secret', workerShutdownTimeout: timeout });
      const daemon = await startDaemon(stack.configPath);
      try {
        await stack.nginx.waitForGeneration(1);
        couch.setDelay(3000);
        couch.rotate();
        const reloads = await stack.nginx.reloads();
        const mark = daemon.mark();
        outcomes[timeout] = await fetch(`${stack.nginx.url}/db/doc`).then(
          async (res) => `${res.status} ${await res.text()}`,
          (error: Error) => `failed: ${String((error.cause as Error | undefined)?.message ?? error.message)}`,
        );
        await daemon.waitForMsgAfter(mark, /nginx reloaded/);
        assert.ok((await stack.nginx.reloads()) > reloads, 'the refresh reloaded nginx while the replay ran');
      } finally {
        await daemon.stop();
        await stack.stop();
        await couch.stop();
      }
    }
    t.diagnostic(`client saw: ${JSON.stringify(outcomes)}`);
    assert.doesNotMatch(outcomes['1s']!, /^200 /, `with worker_shutdown_timeout 1s the replay is cut: ${outcomes['1s']}`);
    const kept = Object.entries(outcomes).find(([t]) => t !== '1s')!;
    assert.match(kept[1], /^200 \{"bytes":0,/, `with the example's ${kept[0]} the replay completes: ${kept[1]}`);
  });
});
