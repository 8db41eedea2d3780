/**
 * Couchbase Sync Gateway through the couchdb-session kind (`login_format: json`, `cookie_name:
 * SyncGatewaySession`, `session_path: /db/_session`): a real nginx rendered from the shipped
 * snippets, the built CLI and the daemon as child processes, in front of a SCRIPTED Sync Gateway
 * (test/helpers/scripted-sync-gateway.ts, modelled on its documented REST responses).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { startKindStack, type KindStack } from '../helpers/kind-stack.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startScriptedSyncGateway, type ScriptedSyncGateway } from '../helpers/scripted-sync-gateway.js';

const skip = skipWithoutNginx();

const USER = 'svc';
const PASSWORD = 'sg-Pa55word';

describe('Sync Gateway through the couchdb-session kind', { skip }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function setUp(): Promise<{ sg: ScriptedSyncGateway; stack: KindStack }> {
    const sg = await startScriptedSyncGateway({ db: 'db', username: USER, password: PASSWORD });
    cleanups.push(() => sg.stop());
    const stack = await startKindStack({
      name: 'sg',
      url: sg.url,
      kind: { kind: 'couchdb-session', username: USER, login_format: 'json', cookie_name: 'SyncGatewaySession', session_path: '/db/_session' },
      variable: 'auth_cookie',
      secret: { key: 'password_file', value: PASSWORD },
    });
    cleanups.push(() => stack.stop());
    return { sg, stack };
  }

  test('refresh-now logs in with JSON at /db/_session, nginx serves /db/doc with the session cookie, and the session path is closed to clients', async () => {
    const { sg, stack } = await setUp();
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /sg: logged in, generation 1/);
    assert.equal(sg.logins(), 1);
    assert.equal(sg.refusedForms(), 0, 'the login was JSON');
    const { cookie, expires } = sg.current();
    assert.ok((await stack.includeBytes()).toString().includes(`set $auth_cookie "${cookie}";`));
    // The expiry is Sync Gateway's own Expires (24 h), not the 600 s lifetime fallback.
    const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
    assert.ok(Math.abs(Date.parse(status.expires) - expires!.getTime()) < 2000, `status says ${status.expires}, Sync Gateway said ${expires!.toISOString()}`);

    await stack.nginx.waitForGeneration(1);
    const res = await stack.request('/db/doc', { headers: { cookie: 'SyncGatewaySession=clients-own', authorization: 'Basic Y2xpZW50OnB3' } });
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body)._id, 'doc');
    const seen = sg.seen().at(-1)!;
    assert.deepEqual([seen.cookie, seen.authorization], [cookie, undefined], "Sync Gateway got the service's cookie and nothing of the client's");

    // Leak guard: clients may neither read nor make nor end the service's session.
    for (const [method, path] of [['GET', '/db/_session'], ['POST', '/db/_session'], ['DELETE', '/db/_session'], ['GET', '/_session']] as const) {
      const answer = await stack.request(path, { method, ...(method === 'POST' ? { body: JSON.stringify({ name: USER, password: PASSWORD }), headers: { 'content-type': 'application/json' } } : {}) });
      assert.equal(answer.status, 403, `${method} ${path}`);
    }
    assert.equal(sg.logins(), 1, 'no login got through nginx');

    // Why login_format matters: Sync Gateway refuses CouchDB's form login with 415.
    stack.session.login_format = 'form';
    await stack.writeConfig();
    const before = await stack.includeBytes();
    const form = await stack.cli(['refresh-now', '--force']);
    assert.equal(form.code, 76, form.stderr);
    assert.match(form.stderr, /answered 415: "Invalid content type application\/x-www-form-urlencoded"/);
    assert.equal(sg.refusedForms(), 1);
    assert.deepEqual(await stack.includeBytes(), before, 'the include is kept');
    for (const text of [run.stdout, run.stderr, form.stdout, form.stderr, await stack.stateText()]) {
      assert.ok(!text.includes(PASSWORD) && !sg.issued().some((id) => text.includes(id)), 'no password or session id in output or state');
    }
  });

  test('every session invalidated at once: 50 concurrent clients through nginx all get 200, with one login', async () => {
    const { sg, stack } = await setUp();
    const daemon = await stack.daemon();
    await stack.nginx.waitForGeneration(1);
    assert.equal((await stack.request('/db/warm')).status, 200);
    assert.equal(sg.logins(), 1);

    sg.invalidateAll();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => stack.request(`/db/doc${i}`)));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 50, `statuses ${[...new Set(statuses)].join(',')}: ${results.find((r) => r.status !== 200)?.body ?? ''}`);
    assert.equal(sg.logins(), 2, 'one login for the whole burst');
    // Sync Gateway's 401 challenge is Basic, which says nothing of the session: GET /db/_session did.
    const verdict = await daemon.waitForMsg(/a 401 on the current/);
    assert.deepEqual([verdict.verdict, verdict.reason], ['dead', 'the backend answered 401 to the session cookie']);
    await daemon.log.waitFor(/"generation":2,.*"msg":"include written and accepted by nginx -t"/, 20_000, 'generation 2 written');
    await stack.nginx.waitForGeneration(2);
    const res = await stack.request('/db/after');
    assert.equal(res.status, 200, res.body);
    assert.equal(sg.seen().at(-1)!.cookie, sg.current().cookie, 'nginx itself now sends the new session');
    assert.equal(sg.logins(), 2);
  });
});
