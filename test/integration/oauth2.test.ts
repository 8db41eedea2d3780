/**
 * The oauth2-client-credentials kind with real parts: a real OAuth 2.0 authorization server
 * (oidc-provider, test/helpers/oidc.ts) issuing JWT access tokens, a test resource server that
 * verifies them against the provider's JWKS (test/helpers/resource-server.ts), nginx built from
 * the shipped snippet for the kind (`Authorization $auth_authorization`, the 401 fallback with
 * the backend's challenge), and the real CLI and daemon as child processes.
 */
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Daemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { until } from '../helpers/poll.js';
import { BASIC_CLIENT, CLIENT_SECRET, POST_CLIENT, startAuthorizationServer, type AuthorizationServer } from '../helpers/oidc.js';
import { startResourceServer, type ResourceServer } from '../helpers/resource-server.js';
import { SESSION, VARIABLE, httpGet, includeGeneration, includeToken, startTokenStack, type TokenStack } from '../helpers/token-stack.js';

const skip = skipWithoutNginx();
const SECRET_FILE = 'client.secret';


/** Every spelling of the client secret a leak could take. */
function secretSpellings(clientId: string, secret: string): Record<string, string> {
  const form = new URLSearchParams({ s: secret }).toString().slice(2);
  return {
    raw: secret,
    'form-encoded': form,
    'uri-encoded': encodeURIComponent(secret),
    'json-escaped': JSON.stringify(secret).slice(1, -1),
    'Basic header': Buffer.from(`${clientId}:${form}`).toString('base64'),
    'Basic header (unencoded)': Buffer.from(`${clientId}:${secret}`).toString('base64'),
  };
}

describe('oauth2-client-credentials against a real authorization server', { skip }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  interface Parts {
    as: AuthorizationServer;
    rs: ResourceServer;
    stack: TokenStack;
  }

  /**
   * An authorization server, a resource server trusting it, and a stack whose session uses
   * client `proxy` with its secret in a 0600 file. `minimal`: the session holds only the keys
   * the documentation's minimal example has.
   */
  async function setup(options: { ttl?: number; cacheMaxAgeMs?: number; session?: Record<string, unknown>; daemon?: Record<string, unknown>; minimal?: boolean } = {}): Promise<Parts> {
    const as = await startAuthorizationServer({ accessTokenTtl: options.ttl ?? 60 });
    cleanups.push(() => as.stop());
    const rs = await startResourceServer({ mode: 'oauth2', issuer: as.issuer, jwksUri: as.jwksUri, audience: as.resource, ...(options.cacheMaxAgeMs === undefined ? {} : { cacheMaxAgeMs: options.cacheMaxAgeMs }) });
    cleanups.push(() => rs.stop());
    const stack = await startTokenStack({
      backend: rs.url,
      secrets: { [SECRET_FILE]: `${CLIENT_SECRET}\n` },
      session: (dir) => ({
        kind: 'oauth2-client-credentials',
        token_url: as.tokenUrl,
        client_id: BASIC_CLIENT,
        client_secret_file: join(dir, SECRET_FILE),
        ...(options.minimal ? {} : { timeout: 3, retries: 0 }),
        ...options.session,
      }),
      daemon: { retry_min: 0.2, retry_max: 1, ...options.daemon },
    });
    cleanups.push(() => stack.stop());
    return { as, rs, stack };
  }

  /** A daemon on the stack, serving its first token through nginx. */
  async function daemonServing(stack: TokenStack): Promise<Daemon> {
    const daemon = await stack.startDaemon();
    await stack.nginx.waitForGeneration(1);
    return daemon;
  }

  test('the minimal config: refresh-now writes a Bearer token (0640) that nginx sends instead of the client\'s own Authorization', async () => {
    const { as, rs, stack } = await setup({ minimal: true });
    assert.deepEqual(Object.keys(stack.session).sort(), ['client_id', 'client_secret_file', 'include', 'kind', 'name', 'token_url', 'url']);
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      as.tokenRequests().map((r) => r.status),
      [200],
      'one token request',
    );

    const text = await readFile(stack.include, 'utf8');
    assert.match(text, new RegExp(`^set \\$${VARIABLE} "Bearer [A-Za-z0-9._~+/-]+=*";$`, 'm'));
    assert.match(text, new RegExp(`^set \\$${VARIABLE}_generation "1";$`, 'm'));
    assert.equal((await stat(stack.include)).mode & 0o777, 0o640);
    const token = includeToken(text)!;
    const claims = decodeJwt(token);
    assert.equal(claims.client_id, BASIC_CLIENT);
    assert.equal(claims.aud, as.resource);
    assert.equal(decodeProtectedHeader(token).kid, as.kid(), 'a token the authorization server signed');

    await stack.nginx.waitForGeneration(1);
    const from = rs.requests().length;
    const res = await stack.get('/things/1', { authorization: 'Bearer the-clients-own-token', cookie: 'AuthSession=client' });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), { ok: true, sub: BASIC_CLIENT, client_id: BASIC_CLIENT, path: '/things/1' });
    const seen = rs.requests().slice(from);
    assert.deepEqual(
      seen.map((r) => r.authorization),
      [`Bearer ${token}`],
      'the resource server saw only the service token, never the client\'s',
    );

    // A cron-driven refresh-now with a fresh token has nothing to do: no token request.
    const again = await stack.cli(['refresh-now']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(as.tokenRequests().length, 1);
    assert.equal(await includeGeneration(stack), 1);
  });

  test('client_secret_post: the client authenticates with form fields and the token works through nginx', async () => {
    const { as, rs, stack } = await setup({ session: { client_id: POST_CLIENT, client_auth: 'client_secret_post' } });
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 0, run.stderr);
    // oidc-provider holds each client to its registered method: a Basic header would have been refused.
    assert.deepEqual(
      as.tokenRequests().map((r) => r.status),
      [200],
    );
    const token = (await stack.token())!;
    assert.equal(decodeJwt(token).client_id, POST_CLIENT);
    await stack.nginx.waitForGeneration(1);
    const res = await stack.get('/things/2');
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).sub, POST_CLIENT);
    assert.equal(rs.requests().at(-1)!.authorization, `Bearer ${token}`);
  });

  test('the daemon replaces the token before it expires: a client polling through nginx across two expiries never sees a non-200', async (t) => {
    const { as, stack } = await setup({ ttl: 5 });
    const daemon = await daemonServing(stack);
    const first = (await stack.token())!;
    const firstExp = decodeJwt(first).exp! * 1000;

    const statuses = new Map<number, number>();
    let polls = 0;
    let lastPollAt = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const res = await stack.get('/poll');
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        polls++;
        lastPollAt = Date.now();
        await delay(10);
      }
    })();
    try {
      await stack.nginx.waitForGeneration(2, 10_000, { atLeast: true });
      const servedSecondAt = Date.now();
      assert.ok(servedSecondAt < firstExp, `nginx served generation 2 at ${new Date(servedSecondAt).toISOString()}, after the first token expired (${new Date(firstExp).toISOString()})`);
      const second = (await stack.token())!;
      assert.notEqual(second, first);
      // Keep polling past the second token's expiry too: the third must be in place by then.
      const secondExp = decodeJwt(second).exp! * 1000;
      await stack.nginx.waitForGeneration(3, 15_000, { atLeast: true });
      await until(() => Date.now() > secondExp + 200, 10_000, 'the second token\'s expiry');
    } finally {
      polling = false;
      await poller;
    }
    t.diagnostic(`${polls} polls, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.ok(lastPollAt > firstExp, 'the polling outlived the first token');
    assert.deepEqual([...statuses.keys()], [200], `statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.ok(polls >= 20, `${polls} polls`);
    // One token request per generation: the refreshes were scheduled, none was a 401's.
    const generation = await includeGeneration(stack);
    assert.equal(as.tokenRequests().length, generation, `${as.tokenRequests().length} token requests for ${generation} generations`);
    assert.equal(daemon.events().filter((e) => e.msg === 'fallback: request replayed').length, 0, 'no client request needed the fallback');
  });

  test('the authorization server rotates its keys: concurrent clients all get 200, for one token request, and the log names invalid_token', async (t) => {
    const { as, rs, stack } = await setup({ cacheMaxAgeMs: 300 });
    const daemon = await daemonServing(stack);
    const old = (await stack.token())!;
    const oldKid = as.kid();
    assert.equal((await httpGet(`${rs.url}/check`, { authorization: `Bearer ${old}` })).status, 200);

    await as.rotateKeys();
    assert.notEqual(as.kid(), oldKid);
    // The resource server sees the new JWKS once its cache ages out: poll until the old token is refused.
    await until(async () => (await httpGet(`${rs.url}/check`, { authorization: `Bearer ${old}` })).status === 401, 5000, 'the resource server to refuse the old token');

    const tokensBefore = as.tokenRequests().length;
    const mark = daemon.mark();
    const from = rs.requests().length;
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => stack.get(`/burst/${i}`)));
    const statuses = results.map((r) => r.status);
    t.diagnostic(`token requests for the rotation: ${as.tokenRequests().length - tokensBefore}`);
    assert.deepEqual([...new Set(statuses)], [200], `statuses ${JSON.stringify(statuses)}`);
    assert.equal(as.tokenRequests().length - tokensBefore, 1, 'one token request for the whole burst');
    // Replays go out as soon as the new token is in hand; the include is written just behind them.
    const fresh = await until(async () => ((await stack.token()) !== old ? stack.token() : undefined), 5000, 'the new token in the include');
    assert.equal(decodeProtectedHeader(fresh!).kid, as.kid(), 'the new token is signed with the new key');
    assert.equal(rs.count({ path: '/burst/*', outcome: 'ok', from }), 40, 'every request reached the resource server with a valid token once');

    const line = await daemon.waitForMsgAfter(mark, /a 401 on the current cookie: replacing it/);
    assert.equal(line.verdict, 'dead');
    assert.match(String(line.reason), /invalid_token/);
  });

  test('a 401 with insufficient_scope goes back to the client as it is, and costs no token request', async () => {
    const { as, rs, stack } = await setup();
    const daemon = await daemonServing(stack);
    const tokensBefore = as.tokenRequests().length;
    const token = await stack.token();
    const from = rs.requests().length;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => stack.get(`/admin/${i}`)));
    for (const res of results) {
      assert.equal(res.status, 401);
      assert.deepEqual(JSON.parse(res.body), { error: 'insufficient_scope' }, 'the body is the resource server\'s own');
      assert.match(String(res.headers['www-authenticate']), /error="insufficient_scope"/);
    }
    assert.equal(as.tokenRequests().length, tokensBefore, 'no token request');
    assert.equal(await stack.token(), token, 'the include still holds the same token');
    // Each request: nginx's attempt and the daemon's one replay, both with the service token.
    assert.equal(rs.count({ path: '/admin/*', outcome: 'insufficient_scope', from }), 40);
    const warned = await daemon.waitForMsg(/fallback: request replayed; a 401 reached the client/);
    assert.match(String(warned.reason), /authorization answer/);
    assert.equal((await stack.get('/still-fine')).status, 200);
  });

  test('right after a key rotation, requests on a path the token may not use: one new token for all, then the backend\'s insufficient_scope reaches the client, with no second token', async () => {
    const { as, rs, stack } = await setup({ cacheMaxAgeMs: 300 });
    await daemonServing(stack);
    const old = (await stack.token())!;
    await as.rotateKeys();
    await until(async () => (await httpGet(`${rs.url}/check`, { authorization: `Bearer ${old}` })).status === 401, 5000, 'the resource server to refuse the old token');
    const tokensBefore = as.tokenRequests().length;
    // Each request: nginx's attempt with the old token (invalid_token), the fallback's one new
    // token, the replay with it (insufficient_scope), which says the request, not the token, is refused.
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => stack.get(`/admin/after-rotation/${i}`)));
    for (const res of results) {
      assert.equal(res.status, 401);
      assert.match(String(res.headers['www-authenticate']), /error="insufficient_scope"/);
    }
    assert.equal(as.tokenRequests().length - tokensBefore, 1, 'one token for the rotation; the replays\' insufficient_scope bought none');
    assert.equal((await stack.get('/still-fine')).status, 200);
  });

  test('a wrong client secret: refresh-now exits 77 with one line naming neither secret nor token, and the include is unchanged', async () => {
    const { as, stack } = await setup();
    const ok = await stack.cli(['refresh-now']);
    assert.equal(ok.code, 0, ok.stderr);
    const token = (await stack.token())!;
    const before = await stack.includeBytes();

    const wrong = 'Wr0ng:+/ secret%';
    await writeFile(join(stack.dir, SECRET_FILE), `${wrong}\n`);
    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 77, run.stderr);
    assert.equal(as.tokenRequests().at(-1)!.status, 401, 'the authorization server refused the client');
    const line = run.stderr.trimEnd();
    assert.equal(line.split('\n').length, 1, line);
    assert.match(line, /refused the token request for client "proxy" \(401: "invalid_client/);
    assert.equal(run.stdout, '');
    for (const [form, spelling] of [...Object.entries(secretSpellings(BASIC_CLIENT, wrong)), ...Object.entries(secretSpellings(BASIC_CLIENT, CLIENT_SECRET)), ['token', token] as const]) {
      assert.ok(!line.includes(spelling), `the line holds the ${form}: ${line}`);
    }
    assert.deepEqual(await stack.includeBytes(), before, 'the include is byte for byte the one before');
    const status = JSON.parse((await stack.cli(['status', '--json'])).stdout) as { sessions: { generation: number; last_error: { code?: string } | null }[] };
    assert.equal(status.sessions[0]!.last_error?.code, 'ERR_CREDENTIALS_REJECTED', 'status says why');
    assert.equal(status.sessions[0]!.generation, 1, 'and that the include still holds generation 1');
  });

  test('the token endpoint goes down: the daemon backs off, nginx serves the token while it is valid, blanks it at expiry, and recovers', async (t) => {
    const { as, rs, stack } = await setup({ ttl: 6 });
    const daemon = await daemonServing(stack);
    const token = (await stack.token())!;
    const tokenExp = decodeJwt(token).exp! * 1000;
    const state = JSON.parse(await readFile(join(stack.stateDir, `${SESSION}.json`), 'utf8')) as { expires: string };
    const daemonExpiry = Date.parse(state.expires);
    // The resource server has the provider's keys before the outage (a JWKS it cannot fetch is a 503).
    assert.equal((await stack.get('/before-outage')).status, 200);
    await as.stop();
    const downSince = Date.now();

    const polls: { at: number; status: number }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const at = Date.now();
        const res = await stack.get('/during-outage');
        polls.push({ at, status: res.status });
        await delay(10);
      }
    })();
    let blankedAt = 0;
    try {
      // Backoff: failed attempts are logged, each with the delay before the next.
      const failures = await until(() => {
        const lines = daemon.events().filter((e) => e.code === 'ERR_BACKEND_UNAVAILABLE' && typeof e.retry_in_ms === 'number');
        return lines.length >= 2 ? lines : undefined;
      }, 10_000, 'two failed token requests in the daemon log');
      assert.ok(Number(failures[1]!.attempt) > Number(failures[0]!.attempt));
      assert.ok(Date.parse(String(failures[0]!.time)) < tokenExp, 'the first refresh failed while the token was still valid');
      await until(async () => (await stack.token()) === undefined, 10_000, 'the include to be blanked');
      blankedAt = Date.now();
      const blank = await includeGeneration(stack);
      await stack.nginx.waitForGeneration(blank);
    } finally {
      polling = false;
      await poller;
    }
    const text = await readFile(stack.include, 'utf8');
    assert.match(text, new RegExp(`^set \\$${VARIABLE} "";$`, 'm'), 'the include sets an empty value');
    assert.ok(blankedAt >= daemonExpiry - 50, `blanked ${daemonExpiry - blankedAt} ms before the token's expiry`);
    assert.ok(blankedAt <= daemonExpiry + 2000, `blanked ${blankedAt - daemonExpiry} ms after the token's expiry`);
    const valid = polls.filter((p) => p.at >= downSince && p.at < tokenExp - 200);
    t.diagnostic(`${polls.length} polls; ${valid.length} while the token was valid; statuses ${JSON.stringify([...new Set(polls.map((p) => p.status))])}`);
    assert.ok(valid.length >= 10, `${valid.length} polls while the token was valid`);
    assert.deepEqual([...new Set(valid.map((p) => p.status))], [200], 'the current token is served while it is valid');

    // After the blank, nginx sends no token at all: no expired token reaches the backend.
    const from = rs.requests().length;
    const res = await stack.get('/after-expiry');
    assert.equal(res.status, 503, res.body);
    assert.ok(Number(res.headers['retry-after']) >= 1, 'with Retry-After');
    assert.ok(rs.requests().slice(from).every((r) => r.authorization === undefined), 'no Authorization header once the token expired');

    // The authorization server comes back: the daemon's next retry gets a token.
    const requestsBefore = as.tokenRequests().length;
    await as.start();
    const recovered = await until(async () => ((await stack.token()) ? includeGeneration(stack) : undefined), 10_000, 'a new token after the outage');
    await stack.nginx.waitForGeneration(recovered);
    assert.equal((await stack.get('/after-recovery')).status, 200);
    assert.equal(as.tokenRequests().length, requestsBefore + 1, 'one token request brought it back');
  });

  test('no secret and no token in stdout, stderr, the daemon log, /metrics, /healthz, status or the state file', async () => {
    const { as, rs, stack } = await setup({ cacheMaxAgeMs: 300, daemon: {} });
    stack.config.log_level = 'debug';
    await stack.writeConfig();
    const outputs: [string, string][] = [];
    const cli = async (args: string[]) => {
      const run = await stack.cli(args);
      outputs.push([`${args.join(' ')} stdout`, run.stdout], [`${args.join(' ')} stderr`, run.stderr]);
      return run;
    };
    assert.equal((await cli(['refresh-now', '--verbose'])).code, 0);
    await stack.nginx.waitForGeneration(1);
    const daemon = await stack.startDaemon();
    // The 401 paths: a rotation (invalid_token, a new token, replays) and an insufficient_scope answer.
    await as.rotateKeys();
    const old = (await stack.token())!;
    await until(async () => (await httpGet(`${rs.url}/check`, { authorization: `Bearer ${old}` })).status === 401, 5000, 'the old token to be refused');
    assert.deepEqual([...new Set((await Promise.all([1, 2, 3].map((i) => stack.get(`/x/${i}`)))).map((r) => r.status))], [200]);
    assert.equal((await stack.get('/admin/x')).status, 401);
    // A wrong secret, seen by the daemon (the secret file is watched) and by refresh-now.
    const wrong = 'An0ther:+/ wrong%';
    const mark = daemon.mark();
    await writeFile(join(stack.dir, SECRET_FILE), `${wrong}\n`);
    await daemon.waitForMsgAfter(mark, /.*refused the token request/);
    assert.equal((await cli(['refresh-now', '--force', '--verbose'])).code, 77);
    await cli(['status']);
    await cli(['status', '--json']);
    outputs.push(['/metrics', await (await fetch(`${stack.admin}/metrics`)).text()]);
    outputs.push(['/healthz', await (await fetch(`${stack.admin}/healthz`)).text()]);
    outputs.push(['state file', await readFile(join(stack.stateDir, `${SESSION}.json`), 'utf8')]);
    await daemon.stop();
    outputs.push(['daemon log', daemon.log.lines.join('\n')]);

    const tokens = new Set(rs.requests().flatMap((r) => (r.authorization?.startsWith('Bearer ') ? [r.authorization.slice(7)] : [])));
    tokens.delete('the-clients-own-token');
    assert.ok(tokens.size >= 2, 'tokens from before and after the rotation');
    const forbidden: [string, string][] = [
      ...Object.entries(secretSpellings(BASIC_CLIENT, CLIENT_SECRET)).map(([k, v]) => [`secret (${k})`, v] as [string, string]),
      ...Object.entries(secretSpellings(BASIC_CLIENT, wrong)).map(([k, v]) => [`wrong secret (${k})`, v] as [string, string]),
      // A token, or its signature alone (a line may cut a token short, never its tail).
      ...[...tokens].flatMap((tok) => [['token', tok] as [string, string], ['token signature', tok.split('.')[2]!] as [string, string]]),
    ];
    for (const [where, text] of outputs) {
      for (const [what, value] of forbidden) assert.ok(!text.includes(value), `${where} holds a ${what}:\n${text.slice(0, 2000)}`);
    }
    assert.ok(outputs.find(([w]) => w === 'daemon log')![1].includes('invalid_token'), 'the daemon log was captured (it names the verdict)');
  });
});
