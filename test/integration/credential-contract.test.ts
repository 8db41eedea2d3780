/**
 * The credential-kind contract: one suite run against every kind (test/helpers/kinds/), each
 * on a real backend where one can run here (a scripted one, named as such, where none can).
 * What every kind must do for the pipeline, the include, nginx and the daemon to work with it
 * unchanged: obtain a credential its whitelist accepts and nginx sends; say when it expires;
 * renew without the long-term secret when the scheme can; replace a credential the backend
 * killed on the first 401, once for a burst of clients; take a 401 about the request as the
 * backend's answer; refuse values nginx would interpret; keep secrets out of every output.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { validateConfig } from '../../src/config/validate.js';
import { credentialKind } from '../../src/credentials/factory.js';
import type { CredentialKind } from '../../src/credentials/kind.js';
import { CookieRefusedError } from '../../src/errors.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { basicHarness } from '../helpers/kinds/basic.js';
import { cloudantBearerHarness, cloudantCookieHarness } from '../helpers/kinds/cloudant-iam.js';
import { couchdbSessionHarness } from '../helpers/kinds/couchdb-session.js';
import type { KindBackend, KindHarness } from '../helpers/kinds/harness.js';
import { jwtHarness } from '../helpers/kinds/jwt.js';
import { oauth2Harness } from '../helpers/kinds/oauth2.js';
import { syncGatewayHarness } from '../helpers/kinds/sync-gateway.js';
import { placeholderInclude, skipWithoutNginx, startNginx, type Nginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

const HARNESSES: KindHarness[] = [couchdbSessionHarness, syncGatewayHarness, oauth2Harness, jwtHarness, cloudantBearerHarness, cloudantCookieHarness, basicHarness];

const SESSION = 'contract';

/** Values nginx would interpret inside `set $v "...";`, or that would end the directive. */
const HOSTILE = ['$host', 'a"b', 'a b', 'a;b', 'a\nb', 'a{b}', 'a\\b', '', 'x'.repeat(5000)];

interface Rig {
  backend: KindBackend;
  nginx: Nginx;
  include: string;
  stateDir: string;
  configPath: string;
  adminUrl: string;
  kind: CredentialKind;
  /** Every CLI run's output and the daemon's log, searched for secrets at the end. */
  outputs: string[];
  cli(args: string[]): Promise<CliResult>;
  daemon?: Daemon;
  stop(): Promise<void>;
}

async function startRig(harness: KindHarness): Promise<Rig> {
  const tmp = await tempDir('sr-contract-');
  const dir = tmp.path;
  await chmod(dir, 0o711);
  await mkdir(join(dir, 'nginx'));
  const backend = await harness.start(dir);
  const include = join(dir, 'include.conf');
  await writeFile(include, placeholderInclude(harness.variable), { mode: 0o640 });
  const fallback = `127.0.0.1:${await freePort()}`;
  let nginx: Nginx;
  try {
    nginx = await startNginx({ prefix: join(dir, 'nginx'), include, backend: backend.url, fallback, session: SESSION, credential: backend.session, variable: harness.variable });
  } catch (error) {
    await backend.stop();
    throw error;
  }
  const adminListen = `127.0.0.1:${await freePort()}`;
  const stateDir = join(dir, 'state');
  const session = { name: SESSION, url: backend.url, include, variable: harness.variable, timeout: 5, retries: 1, ...backend.session };
  const config = {
    state_dir: stateDir,
    nginx: { binary: nginx.binary, prefix: nginx.prefix, config: nginx.confPath, pid_file: nginx.pidFile },
    daemon: { listen: fallback, admin_listen: adminListen, min_refresh_interval: 0.05, fallback_key_file: nginx.fallbackKeyFile },
    sessions: [session],
  };
  const configPath = join(dir, 'config.yaml');
  await writeFile(configPath, stringify(config));
  const checked = validateConfig(config);
  assert.ok(checked.ok, checked.ok ? '' : checked.problems.join('; '));
  const outputs: string[] = [];
  const rig: Rig = {
    backend,
    nginx,
    include,
    stateDir,
    configPath,
    adminUrl: `http://${adminListen}`,
    kind: credentialKind(checked.config.sessions[0]!),
    outputs,
    async cli(args) {
      const result = await runCli([...args, '--config', configPath], backend.env);
      outputs.push(result.stdout, result.stderr);
      return result;
    },
    async stop() {
      if (rig.daemon) {
        await rig.daemon.stop();
        outputs.push(rig.daemon.log.lines.join('\n'));
      }
      await Promise.allSettled([nginx.stop(), backend.stop()]);
      await tmp.remove();
    },
  };
  return rig;
}

/** The credential the include sets (`set $v "...";`), or undefined. */
async function includedValue(rig: Rig, variable: string): Promise<string | undefined> {
  const text = await readFile(rig.include, 'utf8');
  return new RegExp(`^set \\$${variable} "([^"]*)";$`, 'm').exec(text)?.[1];
}

async function servedGeneration(rig: Rig): Promise<number> {
  return Number(await rig.nginx.generation());
}

for (const harness of HARNESSES) {
  describe(`credential contract: ${harness.title}`, { skip: skipWithoutNginx() }, () => {
    let rig: Rig;
    before(async () => {
      rig = await startRig(harness);
    });
    after(async () => {
      await rig?.stop();
    });

    test('obtains a credential its whitelist accepts, with an expiry, and nginx sends it: 200 through nginx', async () => {
      const result = await rig.cli(['refresh-now']);
      assert.equal(result.code, 0, result.stderr);
      const mode = (await stat(rig.include)).mode & 0o777;
      assert.equal(mode, 0o640, 'the include is readable by nginx\'s group only');
      const value = await includedValue(rig, harness.variable);
      assert.ok(value, 'the include sets the credential');
      assert.doesNotThrow(() => rig.kind.assertSafe(value), 'what was written passes the kind\'s own whitelist');
      const state = JSON.parse(await readFile(join(rig.stateDir, `${SESSION}.json`), 'utf8')) as { expires: string; issued: string; generation: number };
      const left = Date.parse(state.expires) - Date.now();
      assert.ok(left > 0, `the credential expires in the future (${state.expires})`);
      assert.ok(left <= 30 * 24 * 3600 * 1000, 'no lifetime beyond the 30 days believed');
      await rig.nginx.waitForGeneration(state.generation);
      const res = await fetch(rig.nginx.url + rig.backend.okPath, { headers: { authorization: 'Bearer client-own', cookie: 'AuthSession=client-own' } });
      assert.equal(res.status, 200, `nginx sent the credential; the backend answered ${res.status}: ${await res.text()}`);
    });

    test('renews without the long-term secret when the scheme can, and never calls a live credential dead', async () => {
      const value = await includedValue(rig, harness.variable);
      assert.ok(value);
      if (!rig.kind.renew) {
        assert.ok(!harness.renews, `${harness.title} re-issues its credential: the kind must offer renewal`);
        return;
      }
      const renewal = await rig.kind.renew(value);
      assert.ok(renewal.kind !== 'declined' || !renewal.dead, `a live credential is not declared dead: ${JSON.stringify(renewal)}`);
      if (harness.renews) assert.ok(renewal.kind === 'renewed' || renewal.kind === 'unchanged', `the backend re-issues: renewed or confirmed, got ${JSON.stringify(renewal)}`);
      if (renewal.kind === 'renewed') assert.doesNotThrow(() => rig.kind.assertSafe(renewal.credential.value));
    });

    test('refuses every value nginx would interpret (exit 65), whatever the kind', () => {
      for (const hostile of HOSTILE) {
        const prefixed = rig.kind.header === 'cookie' ? `AuthSession=${hostile}` : `Bearer ${hostile}`;
        for (const value of [hostile, prefixed]) {
          assert.throws(() => rig.kind.assertSafe(value), (error: unknown) => error instanceof CookieRefusedError && error.exitCode === 65, `refused: ${JSON.stringify(value.slice(0, 20))}`);
        }
      }
    });

    test('a burst of clients after the backend killed the credential: all 200, one new credential', async () => {
      rig.daemon = await startDaemon(rig.configPath, rig.backend.env);
      const before = await servedGeneration(rig);
      const issuedBefore = await rig.backend.issued();
      await rig.backend.invalidate();
      const results = await Promise.all(Array.from({ length: 20 }, () => fetch(rig.nginx.url + rig.backend.okPath).then(async (r) => ({ status: r.status, body: await r.text() }))));
      assert.deepEqual([...new Set(results.map((r) => r.status))], [200], `every client got 200: ${results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body}`).slice(0, 3).join(' | ')}`);
      // The replays went out as soon as the new credential came; the include follows behind them.
      await rig.nginx.waitForGeneration(before + 1);
      const issuedAfter = await rig.backend.issued();
      if (issuedBefore !== undefined) assert.equal(issuedAfter! - issuedBefore, 1, 'one new credential for the whole burst');
      const state = JSON.parse(await readFile(join(rig.stateDir, `${SESSION}.json`), 'utf8')) as { generation: number };
      assert.equal(state.generation, before + 1, 'one new generation for the whole burst');
    });

    const forbidden = harness.forbiddenPath;
    if (forbidden !== undefined) {
      test('a 401 about the request, not the credential, costs no new credential', async () => {
        const path = forbidden;
        const before = await servedGeneration(rig);
        const issuedBefore = await rig.backend.issued();
        const results = await Promise.all(Array.from({ length: 20 }, () => fetch(rig.nginx.url + path).then((r) => r.status)));
        assert.ok(results.every((s) => s === 401 || s === 403), `the backend's own refusal reaches the client: ${[...new Set(results)].join(',')}`);
        assert.equal(await rig.backend.issued(), issuedBefore, 'no new credential');
        assert.equal(await servedGeneration(rig), before, 'no new generation, no reload');
      });
    }

    test('no secret and no credential in stdout, stderr, the log, metrics, healthz, status or the state file', async () => {
      const value = await includedValue(rig, harness.variable);
      assert.ok(value);
      const status = await rig.cli(['status', '--json']);
      assert.equal(status.code, 0, status.stderr);
      const row = (JSON.parse(status.stdout) as { sessions: { credential: { kind: string } }[] }).sessions[0];
      assert.equal(row?.credential.kind, harness.kind, 'status says which kind the session is');
      const metrics = await (await fetch(`${rig.adminUrl}/metrics`)).text();
      const healthz = await (await fetch(`${rig.adminUrl}/healthz`)).text();
      const stateFile = await readFile(join(rig.stateDir, `${SESSION}.json`), 'utf8');
      const texts = { ...Object.fromEntries(rig.outputs.map((o, i) => [`cli output ${i}`, o])), metrics, healthz, stateFile, daemonLog: rig.daemon?.log.lines.join('\n') ?? '' };
      // The token part of the value: the scheme word alone ("Bearer") is no secret.
      const credential = rig.kind.header === 'cookie' ? value.slice(value.indexOf('=') + 1) : value.replace(/^(Bearer|Basic) /, '');
      assert.ok(credential.length >= 8, 'there is a credential to look for');
      for (const [where, text] of Object.entries(texts)) {
        for (const secret of [...rig.backend.secrets, credential]) assert.ok(!text.includes(secret), `${where} holds a secret or the credential (${secret === credential ? "the credential" : "a secret"}, ${secret.length} characters): ${text.slice(0, 300)}`);
      }
    });
  });
}
