/**
 * The jwt kind with real parts: tokens minted by the CLI and the daemon with keys from key_file
 * (an HS256 secret, an ES256 PKCS#8 PEM), sent by nginx built from the shipped snippet, and
 * checked by a test resource server in jwt mode (test/helpers/resource-server.ts) that answers
 * like CouchDB's jwt handler: 401s without a Bearer challenge, so the daemon's 401 path has to
 * ask the probe (`GET /_session` with the token) whether the token or the request was refused.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, exportPKCS8, generateKeyPair } from 'jose';
import type { Daemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { until } from '../helpers/poll.js';
import { startResourceServer, type LocalKey, type ResourceServer } from '../helpers/resource-server.js';
import { httpGet, includeGeneration, startTokenStack, type TokenStack } from '../helpers/token-stack.js';

const skip = skipWithoutNginx();
const SUB = 'svc-reader';
const ROLES = ['reader', 'metrics'];


const hmac = (secret: string): LocalKey => ({ alg: 'HS256', key: new TextEncoder().encode(secret) });

describe('the jwt kind against a resource server that checks its tokens', { skip }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  /** A resource server trusting `keys`, and a stack whose jwt session signs with `key_file` (written with `keyText`). */
  async function setup(keys: Record<string, LocalKey>, keyText: string, session: Record<string, unknown>): Promise<{ rs: ResourceServer; stack: TokenStack }> {
    const rs = await startResourceServer({ mode: 'jwt', keys });
    cleanups.push(() => rs.stop());
    const stack = await startTokenStack({
      backend: rs.url,
      secrets: { 'signing.key': keyText },
      session: (dir) => ({ kind: 'jwt', key_file: join(dir, 'signing.key'), sub: SUB, roles: ROLES, timeout: 3, retries: 0, ...session }),
    });
    cleanups.push(() => stack.stop());
    return { rs, stack };
  }

  async function daemonServing(stack: TokenStack): Promise<Daemon> {
    const daemon = await stack.startDaemon();
    await stack.nginx.waitForGeneration(1);
    return daemon;
  }

  test('HS256 with the secret from key_file: the token carries sub, roles at _couchdb.roles, kid and exp, and the backend accepts it through nginx', async () => {
    const secret = 'hs256 shared secret: not a password, 32+ bytes long';
    const { rs, stack } = await setup({ 'hs-1': hmac(secret) }, `${secret}\n`, { algorithm: 'HS256', kid: 'hs-1', lifetime: 120 });
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 0, run.stderr);
    const token = (await stack.token())!;
    assert.deepEqual(decodeProtectedHeader(token), { alg: 'HS256', typ: 'JWT', kid: 'hs-1' });
    const claims = decodeJwt(token);
    assert.equal(claims.sub, SUB);
    assert.deepEqual(claims._couchdb, { roles: ROLES });
    assert.equal(claims.exp! - claims.iat!, 120);
    assert.ok(Math.abs(claims.iat! * 1000 - Date.now()) < 10_000);

    await stack.nginx.waitForGeneration(1);
    const res = await stack.get('/db/doc', { authorization: 'Bearer someone-elses' });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), { ok: true, sub: SUB, roles: ROLES, path: '/db/doc' });
    assert.equal(rs.requests().at(-1)!.authorization, `Bearer ${token}`, 'the backend saw the minted token, not the client\'s');
    // The snippet's leak guard: clients may not ask the backend which account the token is.
    const session = await stack.get('/_session');
    assert.equal(session.status, 403);
    assert.equal(rs.requests().at(-1)!.path, '/db/doc', 'the guarded path never reached the backend');
  });

  test('ES256 with a PKCS#8 PEM key_file: the backend verifies the signature with the public key', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const pem = await exportPKCS8(privateKey);
    const { rs, stack } = await setup({ 'ec-1': { alg: 'ES256', key: publicKey } }, pem, { algorithm: 'ES256', kid: 'ec-1' });
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 0, run.stderr);
    const token = (await stack.token())!;
    assert.equal(decodeProtectedHeader(token).alg, 'ES256');
    await stack.nginx.waitForGeneration(1);
    const res = await stack.get('/db/doc');
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).sub, SUB);
    assert.equal(rs.count({ path: '/db/doc', outcome: 'ok' }), 1);
  });

  test('kid rotation: the backend drops the old key and the config names the new one; the probe says dead, one new token is minted and every client gets 200', async (t) => {
    const oldSecret = 'the first HS256 secret, kid k1';
    const { rs, stack } = await setup({ k1: hmac(oldSecret) }, `${oldSecret}\n`, { algorithm: 'HS256', kid: 'k1' });
    const daemon = await daemonServing(stack);
    assert.equal((await stack.get('/db/before')).status, 200);
    const old = (await stack.token())!;

    // The backend rotates: a new kid, the old key gone.
    const newSecret = 'the second HS256 secret, kid k2';
    rs.setKeys({ k2: hmac(newSecret) });
    assert.equal((await httpGet(`${rs.url}/db/direct`, { authorization: `Bearer ${old}` })).status, 401, 'the backend refuses the old token');
    // The operator points the session at the new key; the daemon re-reads its config on change.
    await writeFile(join(stack.dir, 'signing-2.key'), `${newSecret}\n`, { mode: 0o600 });
    Object.assign(stack.session, { key_file: join(stack.dir, 'signing-2.key'), kid: 'k2' });
    const applied = daemon.mark();
    await stack.writeConfig();
    await daemon.waitForMsgAfter(applied, /configuration applied/);
    assert.equal(await stack.token(), old, 'a config change alone does not replace a token that is not due');

    const mark = daemon.mark();
    const from = rs.requests().length;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => stack.get(`/db/after/${i}`)));
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200], `statuses ${JSON.stringify(results.map((r) => r.status))}`);
    const line = await daemon.waitForMsgAfter(mark, /a 401 on the current cookie: replacing it/);
    assert.equal(line.verdict, 'dead');
    assert.match(String(line.reason), /401/, 'the probe\'s answer decided');
    assert.ok(rs.count({ path: '/_session', outcome: 'invalid_token', from }) >= 1, 'the probe asked /_session with the old token');
    const fresh = await until(async () => ((await stack.token()) !== old ? stack.token() : undefined), 5000, 'the new token in the include');
    assert.equal(decodeProtectedHeader(fresh!).kid, 'k2');
    assert.equal(await includeGeneration(stack), 2, 'one new token for the whole burst');
    const replays = daemon.events().slice(mark).filter((e) => e.msg === 'fallback: request replayed');
    t.diagnostic(`${replays.length} replays; verdicts ${JSON.stringify([...new Set(replays.map((e) => e.verdict))])}`);
    assert.equal(rs.count({ path: '/db/after/*', outcome: 'ok', from }), 20);
  });

  test('a 401 on a path the token may not use: the probe says the token is alive, the 401 reaches the client, no new token', async () => {
    const secret = 'an HS256 secret for a reader';
    const { rs, stack } = await setup({ r1: hmac(secret) }, `${secret}\n`, { algorithm: 'HS256', kid: 'r1' });
    const daemon = await daemonServing(stack);
    const token = await stack.token();
    const from = rs.requests().length;
    const results = await Promise.all(Array.from({ length: 20 }, () => stack.get('/_config/admins')));
    for (const res of results) {
      assert.equal(res.status, 401);
      assert.deepEqual(JSON.parse(res.body), { error: 'unauthorized', reason: 'You are not a server admin.' }, 'the backend\'s own answer');
    }
    assert.ok(rs.count({ path: '/_session', outcome: 'ok', from }) >= 1, 'the probe asked /_session');
    assert.equal(rs.count({ path: '/_session', outcome: 'invalid_token', from }), 0);
    // nginx's request and the one replay, both with the same token.
    assert.equal(rs.count({ path: '/_config/admins', outcome: 'forbidden', from }), 40);
    assert.equal(await stack.token(), token, 'the same token');
    assert.equal(await includeGeneration(stack), 1, 'no new token');
    const warned = await daemon.waitForMsg(/fallback: request replayed; a 401 reached the client/);
    assert.match(String(warned.reason), /authorization answer/);
    assert.equal(daemon.events().filter((e) => e.msg === 'a 401 on the current cookie: replacing it').length, 0);
    assert.equal((await stack.get('/db/allowed')).status, 200);
  });
});
