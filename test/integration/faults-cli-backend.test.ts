/**
 * Faults of the backend on the `refresh-now` path, against the real stack (pouchdb-server behind
 * a real nginx, the built CLI spawned as cron runs it): refused connections, stalls, 5xx, a
 * /_session that sets no cookie, hostile Set-Cookie headers, and a wrong password. Where a fault
 * is one no real server produces on demand the login goes to a SCRIPTED backend, named so in
 * each title, while nginx keeps proxying to the real pouchdb-server.
 *
 * What every failed run must leave behind: the exit code of the README's table, exactly one line
 * on stderr (what, why, what to do), the previous include byte for byte, nginx not reloaded and
 * still serving with the earlier cookie, and no password or cookie in the output
 * (test/helpers/fault-checks.ts).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, beforeEach, describe, test } from 'node:test';
import { assertNoSecrets, assertPreviousKept, cookieOf, COUCH_OK_BODY, oneLine } from '../helpers/fault-checks.js';
import { startHeaderEcho, upstreamSaw, type HeaderEcho } from '../helpers/header-echo.js';
import { startIncludeStack, type IncludeStack } from '../helpers/include-stack.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { rawResponse, startScriptedBackend, type ScriptedBackend } from '../helpers/scripted-backend.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

describe('refresh-now when the backend fails', { skip }, () => {
  let stack: Stack;
  let scripted: ScriptedBackend;
  let goodInclude: Buffer;
  let secrets: string[];

  before(async () => {
    stack = await startStack();
    const first = await stack.cli(['refresh-now']);
    assert.equal(first.code, 0, first.stderr);
    await stack.nginx.waitForGeneration(1);
    goodInclude = await stack.includeBytes();
    secrets = [stack.couch.admin.password, cookieOf(goodInclude)];
    scripted = await startScriptedBackend(() => rawResponse('500 Internal Server Error', []));
  });
  beforeEach(async () => {
    Object.assign(stack.session, { url: scripted.url, timeout: 5, retries: 1 });
    await stack.writeConfig();
  });
  after(async () => {
    await scripted?.stop();
    await stack?.stop();
  });

  test('a backend port with nothing listening exits 69 after retries+1 connection attempts, keeping the include and nginx serving', async () => {
    Object.assign(stack.session, { url: `http://127.0.0.1:${await freePort()}`, retries: 2 });
    await stack.writeConfig();
    const reloads = await stack.nginx.reloads();

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 69, run.stderr);
    assert.match(oneLine(run), /cannot reach http:\/\/127\.0\.0\.1:\d+\/_session \(ECONNREFUSED.*, 3 attempt\(s\)\); is the backend up\?$/);
    assert.equal(run.stdout, '');
    assertNoSecrets(run, secrets);
    await assertPreviousKept(stack, goodInclude, reloads);
  });

  test('a backend that stalls (scripted) exits 69 saying it did not answer within the 1s timeout, after one attempt with retries: 0', async () => {
    Object.assign(stack.session, { timeout: 1, retries: 0 });
    await stack.writeConfig();
    scripted.setScript(() => 'stall');
    const requests = scripted.requests();
    const reloads = await stack.nginx.reloads();

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 69, run.stderr);
    assert.match(oneLine(run), /\/_session did not answer within 1s \(1 attempt\(s\)\); check the backend, or raise timeout$/);
    assert.equal(scripted.requests() - requests, 1, 'retries: 0 means one request');
    assertNoSecrets(run, secrets);
    await assertPreviousKept(stack, goodInclude, reloads);
  });

  test('a backend that answers 500 (scripted) exits 69 after exactly one request: 500 is not in the retried statuses', async () => {
    Object.assign(stack.session, { retries: 2 });
    await stack.writeConfig();
    // The reason quotes the password, as a careless backend might: it must come out redacted.
    const body = JSON.stringify({ error: 'internal', reason: `login with ${stack.couch.admin.password} failed` });
    scripted.setScript(() => rawResponse('500 Internal Server Error', [], body));
    const requests = scripted.requests();
    const reloads = await stack.nginx.reloads();

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 69, run.stderr);
    assert.match(oneLine(run), /\/_session answered 500: "login with \[redacted\] failed" after \d+ attempt\(s\); the backend is failing, try again later$/);
    assert.equal(scripted.requests() - requests, 1, '500 is not retried');
    assertNoSecrets(run, secrets);
    await assertPreviousKept(stack, goodInclude, reloads);
  });

  test('the message for a 500 (scripted backend) counts the one attempt actually made, not retries+1', async () => {
    Object.assign(stack.session, { retries: 2 });
    await stack.writeConfig();
    scripted.setScript(() => rawResponse('500 Internal Server Error', [], '{"error":"internal"}'));
    const requests = scripted.requests();

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 69, run.stderr);
    assert.equal(scripted.requests() - requests, 1);
    assert.match(oneLine(run), /answered 500: "internal" after 1 attempt\(s\)/, 'an operator reading "after 3 attempt(s)" would believe the backend was tried three times');
  });

  for (const { status, retries } of [
    { status: '502 Bad Gateway', retries: 2 },
    { status: '503 Service Unavailable', retries: 1 },
  ]) {
    const code = status.slice(0, 3);
    test(`a backend that answers ${code} (scripted) is retried \`retries\` (${retries}) times, then exits 69 keeping the include`, async () => {
      Object.assign(stack.session, { retries });
      await stack.writeConfig();
      scripted.setScript(() => rawResponse(status, [], '{"error":"unavailable"}'));
      const requests = scripted.requests();
      const reloads = await stack.nginx.reloads();

      const run = await stack.cli(['refresh-now', '--force']);
      assert.equal(run.code, 69, run.stderr);
      assert.equal(scripted.requests() - requests, retries + 1, `retries: ${retries} means ${retries + 1} requests`);
      assert.match(oneLine(run), new RegExp(`answered ${code}: "unavailable" after ${retries + 1} attempt\\(s\\); the backend is failing, try again later$`));
      assertNoSecrets(run, secrets);
      await assertPreviousKept(stack, goodInclude, reloads);
    });
  }

  test('a backend that answers 200 without Set-Cookie (scripted) exits 76: it is not a CouchDB-style /_session', async () => {
    scripted.setScript(() => rawResponse('200 OK', [], COUCH_OK_BODY));
    const requests = scripted.requests();
    const reloads = await stack.nginx.reloads();

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 76, run.stderr);
    assert.match(oneLine(run), /answered the login with success but set no AuthSession cookie; is this a CouchDB-style \/_session endpoint\?$/);
    assert.equal(scripted.requests() - requests, 1, 'a protocol error is not retried');
    assertNoSecrets(run, secrets);
    await assertPreviousKept(stack, goodInclude, reloads);
  });

  // Raw header bytes: the scripted backend writes each string as latin1, one byte per char.
  const utf8Bytes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
  const HOSTILE: { name: string; header: string; line: RegExp; echoed: string }[] = [
    { name: '{ and } in the value', header: 'Set-Cookie: AuthSession=YWRt{aW4}Og; Path=/', line: /forbidden character \('\{', 0x7b\) at position 5;.*refused, nothing written$/, echoed: 'YWRt{aW4}Og' },
    { name: 'a raw UTF-8 é in the value', header: utf8Bytes('Set-Cookie: AuthSession=YWRtaé4; Path=/'), line: /forbidden character \(0xc3\) at position 6;.*refused, nothing written$/, echoed: 'YWRta' },
    // Node's HTTP parser stops at 16 KB of headers; the README maps unparseable HTTP to 65.
    { name: 'a 64 KB value (over Node\'s 16 KB header limit)', header: `Set-Cookie: AuthSession=${'QUFB'.repeat(16384)}; Path=/`, line: /sent a malformed HTTP response \(HPE_HEADER_OVERFLOW\); refused, nothing written$/, echoed: 'QUFBQUFB' },
    { name: 'an LF inside the value', header: 'Set-Cookie: AuthSession=YWJj\nset $x 1; Path=/', line: /sent a malformed HTTP response \(HPE_[A-Z_]+\); refused, nothing written$/, echoed: 'set $x' },
  ];
  for (const { name, header, line, echoed } of HOSTILE) {
    test(`a Set-Cookie with ${name} (scripted backend) is refused with exit 65 after one request; include, nginx and output stay clean`, async () => {
      scripted.setScript(() => rawResponse('200 OK', [header], COUCH_OK_BODY));
      const requests = scripted.requests();
      const reloads = await stack.nginx.reloads();

      const run = await stack.cli(['refresh-now', '--force']);
      assert.equal(run.code, 65, run.stderr);
      assert.match(oneLine(run), line);
      assert.equal(scripted.requests() - requests, 1, 'a refused response is not retried');
      assertNoSecrets(run, [...secrets, echoed]);
      await assertPreviousKept(stack, goodInclude, reloads);
    });
  }
});

describe('a cookie value that URL-decodes to an nginx variable (%24http_host, scripted backend)', { skip }, () => {
  let scripted: ScriptedBackend;
  let echo: HeaderEcho;
  let stack: IncludeStack;

  before(async () => {
    scripted = await startScriptedBackend(() => rawResponse('200 OK', ['Set-Cookie: AuthSession=%24http_host; Version=1; Path=/; HttpOnly'], COUCH_OK_BODY));
    echo = await startHeaderEcho();
    stack = await startIncludeStack({ names: ['couch'], url: scripted.url, username: 'admin', password: 'pct-secret', upstream: echo.url });
  });
  after(async () => {
    await stack?.stop();
    await echo?.stop();
    await scripted?.stop();
  });

  test('is accepted as-is (values are not decoded) and nginx sends exactly "AuthSession=%24http_host" upstream, not the Host', async () => {
    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 0, run.stderr);
    assert.match((await stack.includeBytes()).toString(), /^set \$auth_cookie "AuthSession=%24http_host";$/m);

    const server = stack.nginx.servers[0]!;
    assert.equal(await server.waitForGeneration(1), 'AuthSession=%24http_host', '$auth_cookie holds the literal value');
    const seen = await upstreamSaw(`${server.url}/_session_refresher/upstream`, 1);
    assert.equal(seen.cookie, 'AuthSession=%24http_host', 'the Cookie header nginx sent upstream');
  });
});

describe('a wrong password with refresh-now run from cron', { skip }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.stop();
  });

  test('each run makes exactly one login attempt and exits 77: five runs, five attempts, never a retry storm', async () => {
    await writeFile(stack.passwordFile, 'wrong-horse-battery\n');
    const placeholder = await stack.includeBytes();
    await stack.couch.settle();
    const start = stack.couch.loginAttempts();

    for (let run = 1; run <= 5; run++) {
      const result = await stack.cli(['refresh-now']);
      assert.equal(result.code, 77, result.stderr);
      assert.match(oneLine(result), /rejected the login for user "admin" \(401.*\); check the password source and the account on the backend$/);
      assertNoSecrets(result, ['wrong-horse-battery', stack.couch.admin.password]);
      await stack.couch.settle();
      assert.equal(stack.couch.loginAttempts() - start, run, `after run ${run}: one attempt per run`);
    }
    assert.equal(stack.couch.logins(), 0);
    assert.deepEqual(await stack.includeBytes(), placeholder, 'the placeholder include is untouched');
    assert.equal(await stack.nginx.reloads(), 0);
  });
});
