/**
 * The cloudant-iam kind end to end: a real nginx rendered from the shipped snippets, the built
 * CLI and the daemon as child processes, in front of a SCRIPTED IAM token endpoint and Cloudant
 * account (test/helpers/scripted-iam.ts, modelled on IBM's documented responses; the real
 * services cannot run here). Each behaviour is checked with the access token sent as a Bearer
 * header and with the IAMSession cookie made from it.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { afterEach, describe, test } from 'node:test';
import { startKindStack, type KindStack } from '../helpers/kind-stack.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startScriptedIam, type ScriptedIam } from '../helpers/scripted-iam.js';

const skip = skipWithoutNginx();

const API_KEY = 'MxVp86XHkU82Wc97tdvDF8qM8B0Xdit2RqR1mGfVXPWz';
const WRONG_KEY = 'WrongKey0000aaaabbbbccccddddeeeeffff11112222';

const MODES = [
  { token_use: 'bearer', variable: 'auth_authorization', header: 'authorization', probed: 'the backend answered 401 to the credential' },
  { token_use: 'cookie', variable: 'auth_cookie', header: 'cookie', probed: 'the backend answered 401 to the session cookie' },
] as const;

/** The secrets that must never appear in output: the API keys and every token or cookie issued. */
function secrets(iam: ScriptedIam): string[] {
  // A token's last part is its random signature: a partial leak of the token shows it too.
  const parts = iam.issued().flatMap((v) => [v, v.split('.').pop()!]);
  return [API_KEY, WRONG_KEY, ...parts];
}

function assertNoSecret(iam: ScriptedIam, where: string, text: string): void {
  for (const secret of secrets(iam)) assert.ok(!text.includes(secret), `${where} holds a secret (${secret.slice(0, 6)}…)`);
}

describe('cloudant-iam through a real nginx', { skip }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function setUp(mode: (typeof MODES)[number]): Promise<{ iam: ScriptedIam; stack: KindStack }> {
    const iam = await startScriptedIam({ apiKey: API_KEY });
    cleanups.push(() => iam.stop());
    const stack = await startKindStack({
      name: 'cloudant',
      url: iam.accountUrl,
      // The variable is left to the kind's default for the mode; nginx's include names it.
      kind: { kind: 'cloudant-iam', token_use: mode.token_use, iam_url: iam.tokenUrl },
      variable: mode.variable,
      secret: { key: 'api_key_file', value: API_KEY },
    });
    cleanups.push(() => stack.stop());
    delete stack.session.variable;
    await stack.writeConfig();
    return { iam, stack };
  }

  for (const mode of MODES) {
    test(`${mode.token_use}: refresh-now writes the include, nginx sends the service's credential and never the client's own; a refused API key exits 77 and keeps the include byte for byte`, async () => {
      const { iam, stack } = await setUp(mode);
      const run = await stack.cli(['refresh-now']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /cloudant: logged in, generation 1/);
      assert.equal(iam.tokensIssued(), 1);
      assert.equal(iam.cookiesIssued(), mode.token_use === 'cookie' ? 1 : 0);

      const expected = mode.token_use === 'bearer' ? iam.current().bearer! : iam.current().cookie!;
      const include = (await stack.includeBytes()).toString();
      assert.ok(include.includes(`set $${mode.variable} "${expected}";`), `the include sets $${mode.variable} to the ${mode.token_use} credential:\n${include}`);
      await stack.nginx.waitForGeneration(1);

      // A client that brings its own credentials: nginx replaces them with the service's.
      const res = await stack.request('/db/doc1', { headers: { authorization: 'Bearer client-own-token', cookie: 'IAMSession=client-own; theme=dark' } });
      assert.equal(res.status, 200, res.body);
      const seen = iam.seen().at(-1)!;
      assert.equal(seen.path, '/db/doc1');
      assert.equal(seen[mode.header], expected, `the account got the service's ${mode.header}`);
      assert.equal(seen[mode.header === 'cookie' ? 'authorization' : 'cookie'], undefined, 'and no other credential header');
      // The login path of the kind is the service's alone.
      assert.equal((await stack.request('/_iam_session', { method: 'POST', body: 'access_token=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 403);
      assert.equal((await stack.request('/_session')).status, 403);

      // The key is replaced by one IAM does not know: BXNIM0415E, exit 77, the include untouched.
      const before = await stack.includeBytes();
      const requests = iam.tokenRequests();
      await writeFile(stack.secretFile, `${WRONG_KEY}\n`);
      const refused = await stack.cli(['refresh-now', '--force']);
      assert.equal(refused.code, 77, `${refused.stdout}\n${refused.stderr}`);
      assert.match(refused.stderr, /BXNIM0415E: Provided API key could not be found/);
      assert.match(refused.stderr, /api_key_file /, 'the message names the key source');
      assert.deepEqual(await stack.includeBytes(), before, 'the include is kept byte for byte');
      assert.equal(iam.tokenRequests(), requests + 1, 'a refused key is not retried');
      assert.equal((await stack.request('/db/doc1')).status, 200, 'nginx still serves the previous credential');

      const status = await stack.cli(['status', '--json']);
      for (const [where, text] of [['refresh-now stdout', run.stdout], ['refresh-now stderr', run.stderr], ['refused stdout', refused.stdout], ['refused stderr', refused.stderr], ['status --json', status.stdout + status.stderr], ['the state directory', await stack.stateText()]] as const) {
        assertNoSecret(iam, where, text);
      }
    });

    test(`${mode.token_use}: every token and cookie invalidated at once: 100 concurrent clients through nginx all get 200, with one new token request; no secret in the daemon's log, the state file or status`, async () => {
      const { iam, stack } = await setUp(mode);
      const daemon = await stack.daemon();
      await stack.nginx.waitForGeneration(1);
      assert.equal((await stack.request('/db/warm')).status, 200);
      const tokens = iam.tokenRequests();
      const cookies = iam.cookiesIssued();
      assert.equal(tokens, 1);

      iam.invalidateAll();
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => stack.request(`/db/doc${i}`, { headers: { authorization: 'Bearer client-own-token' } })));
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 200).length, 100, `statuses ${[...new Set(statuses)].join(',')}: ${results.find((r) => r.status !== 200)?.body ?? ''}`);
      assert.equal(iam.tokenRequests(), tokens + 1, 'one token request for the whole burst');
      assert.equal(iam.cookiesIssued(), cookies + (mode.token_use === 'cookie' ? 1 : 0), 'and, with cookies, one /_iam_session');
      // Every answer the clients got was made with the new credential.
      const fresh = mode.token_use === 'bearer' ? iam.current().bearer : iam.current().cookie;
      const served = iam.seen().filter((s) => s.status === 200 && /^\/db\/doc\d+$/.test(s.path));
      assert.equal(new Set(served.map((s) => s.path)).size, 100);
      assert.ok(served.every((s) => s[mode.header] === fresh && s.authorization !== 'Bearer client-own-token'));
      // The replays went out with the new credential before the include was written; then the include.
      await daemon.log.waitFor(/"generation":2,.*"obtained_by":"login","msg":"include written and accepted by nginx -t"/, 20_000, 'generation 2 written');
      const written = daemon.events().filter((e) => e.msg === 'include written and accepted by nginx -t');
      assert.deepEqual(written.map((e) => [e.generation, e.obtained_by]), [[1, 'login'], [2, 'login']], 'one new credential, obtained with the API key');
      // Cloudant's 401 names no error, so the daemon asked GET /_session, which said the credential is dead.
      const verdict = await daemon.waitForMsg(/a 401 on the current/);
      assert.deepEqual([verdict.verdict, verdict.reason], ['dead', mode.probed]);
      await stack.nginx.waitForGeneration(2);
      assert.equal((await stack.request('/db/after')).status, 200, 'nginx serves the new credential itself');

      const status = await stack.cli(['status', '--json']);
      assert.equal(status.code, 0, status.stderr);
      assert.equal(JSON.parse(status.stdout).sessions[0].generation, 2);
      assertNoSecret(iam, 'the daemon log', daemon.log.lines.join('\n'));
      assertNoSecret(iam, 'the state directory', await stack.stateText());
      assertNoSecret(iam, 'status --json', status.stdout + status.stderr);
    });
  }
});
