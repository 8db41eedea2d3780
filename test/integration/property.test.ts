/**
 * Properties checked against a REAL nginx (include-nginx: it answers with what `$auth_cookie`
 * holds, and forwards it upstream to a header echo).
 *
 * 1. The renderer is the only thing between a backend's cookie and nginx's config parser. For any
 *    string it must either refuse it (CookieRefusedError, and only for a value outside the
 *    whitelist or its length limit) or render an include that `nginx -t` accepts and after which
 *    nginx holds, and sends upstream, exactly `AuthSession=<value>`: nothing interpolated, nothing
 *    lost, no other directive smuggled in.
 * 2. Whatever sequence of login outcomes cron runs into, the include on disk is always the last
 *    one successfully written, and nginx serves it. The login goes to a SCRIPTED backend: no real
 *    server answers ok, 401, a dropped connection or a hostile cookie on demand.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { CookieRefusedError } from '../../src/errors.js';
import { renderInclude } from '../../src/render/include.js';
import { writeAtomic } from '../../src/render/write.js';
import { MAX_COOKIE_VALUE_LENGTH, isAllowedCookieOctet } from '../../src/session/cookie.js';
import { startHeaderEcho, upstreamSaw, type HeaderEcho } from '../helpers/header-echo.js';
import { startIncludeNginx, type IncludeNginx } from '../helpers/include-nginx.js';
import { startIncludeStack, type IncludeStack } from '../helpers/include-stack.js';
import { placeholderInclude, skipWithoutNginx } from '../helpers/nginx.js';
import { rawResponse, startScriptedBackend, type ScriptedBackend } from '../helpers/scripted-backend.js';
import { tempDir } from '../helpers/tmp.js';

const skip = skipWithoutNginx();

/** Whether the README's whitelist takes `value`: 1 to MAX_COOKIE_VALUE_LENGTH allowed octets. */
function whitelisted(value: string): boolean {
  if (value.length === 0 || value.length > MAX_COOKIE_VALUE_LENGTH) return false;
  for (let i = 0; i < value.length; i++) if (!isAllowedCookieOctet(value.charCodeAt(i))) return false;
  return true;
}

/** Every RFC 6265 cookie-octet except $ { }, as a regex class. */
const ALLOWED = '[\\x21\\x23\\x25-\\x2b\\x2d-\\x3a\\x3c-\\x5b\\x5d-\\x7a\\x7c\\x7e]';

/** Pieces that mean something to nginx's config parser or to a URL decoder, to mix into values. */
const NGINX_MEANINGFUL = ['$', '${', '}', '{', '\\', '"', "'", ';', '#', ' ', '\n', '\t', '%24', '%7B', '%22', 'http_host', '$host', 'AuthSession=', '=', 'return 200 "x"', 'A'];

const VALUES = fc.oneof(
  { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 64 }) },
  { weight: 2, arbitrary: fc.stringMatching(/^[\x21-\x7e]{1,200}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 32 }) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...NGINX_MEANINGFUL), { minLength: 1, maxLength: 12 }).map((parts) => parts.join('')) },
  // Accepted values are what exercise nginx; lengths near the limit are the boundary test's.
  { weight: 4, arbitrary: fc.stringMatching(new RegExp(`^${ALLOWED}{1,1024}$`)) },
);

describe('renderInclude against a real nginx', { skip }, () => {
  let dir: { path: string; remove: () => Promise<void> };
  let echo: HeaderEcho;
  let nginx: IncludeNginx;
  let include: string;
  let generation = 0;

  before(async () => {
    dir = await tempDir('sr-prop-');
    include = join(dir.path, 'prop.conf');
    await writeFile(include, placeholderInclude(), { mode: 0o640 });
    echo = await startHeaderEcho();
    nginx = await startIncludeNginx({ prefix: dir.path, includes: [include], upstream: echo.url });
  });
  after(async () => {
    await nginx?.stop();
    await echo?.stop();
    await dir?.remove();
  });

  /** `nginx -t` on the running configuration: undefined when it passes, else nginx's complaint. */
  function nginxTest(): string | undefined {
    const r = spawnSync(nginx.binary, ['-t', '-q', '-p', nginx.prefix, '-c', nginx.confPath], { encoding: 'utf8' });
    return r.status === 0 ? undefined : r.stderr.trim() || `exit ${r.status}`;
  }

  /**
   * Renders `value` into the include. Returns 'refused' when the renderer refuses it (and checks
   * that it had to), else checks that nginx -t passes and that, once reloaded, nginx holds and
   * sends upstream exactly `AuthSession=<value>`.
   */
  async function renderAndServe(value: string): Promise<'refused' | 'served'> {
    const next = generation + 1;
    let text: string;
    try {
      text = renderInclude({ session: 'prop', variable: 'auth_cookie', cookieName: 'AuthSession', value, generation: next, issued: new Date(), expires: new Date(Date.now() + 600_000) });
    } catch (error) {
      assert.ok(error instanceof CookieRefusedError, `only CookieRefusedError, got ${String(error)}`);
      assert.equal(whitelisted(value), false, `refused a whitelisted value: ${JSON.stringify(value)}`);
      return 'refused';
    }
    assert.equal(whitelisted(value), true, `rendered a value outside the whitelist: ${JSON.stringify(value)}`);
    const previous = placeholderInclude();
    await writeAtomic(include, text, { mode: 0o640 });
    const complaint = nginxTest();
    if (complaint !== undefined) {
      await writeAtomic(include, previous, { mode: 0o640 }); // leave nginx a config it accepts
      assert.fail(`nginx -t refused the include for an accepted ${value.length}-byte value: ${complaint}`);
    }
    generation = next;
    nginx.reload();
    const server = nginx.servers[0]!;
    assert.equal(await server.waitForGeneration(next), `AuthSession=${value}`, '$auth_cookie holds exactly the value');
    assert.equal((await upstreamSaw(`${server.url}/upstream`, next)).cookie, `AuthSession=${value}`, 'nginx sends exactly the value upstream');
    return 'served';
  }

  test('any string is either refused for a whitelist reason, or nginx -t accepts it and nginx holds and forwards exactly AuthSession=<value>', async (t) => {
    const outcomes = { refused: 0, served: 0 };
    await fc.assert(
      fc.asyncProperty(VALUES, async (value) => {
        outcomes[await renderAndServe(value)]++;
      }),
      {
        numRuns: 100,
        // Shrinking would reload nginx hundreds of times; the counterexample is printed as found.
        endOnFailure: true,
        examples: [['%24http_host'], ['YWRtaW46NkIwMkMwQTg6zFWAPzKtDaH2tJvxB8jtkr96sMw'], ['#'], ["'"], ['$http_authorization'], ['a"; return 200 "owned']],
      },
    );
    t.diagnostic(`${outcomes.served} values served by nginx, ${outcomes.refused} refused by the renderer`);
    assert.ok(outcomes.served >= 5 && outcomes.refused >= 5, `both branches ran: ${JSON.stringify(outcomes)}`);
  });

  test('every length the whitelist accepts, up to MAX_COOKIE_VALUE_LENGTH, is also accepted by nginx -t and served', async () => {
    // nginx reads its config through a 4096-byte buffer, and one token ("AuthSession=<value>")
    // must fit in it; a renderer that accepts a longer token hands nginx an include it refuses.
    const refusedByNginx: string[] = [];
    for (const length of [1, 2048, 4082, 4083, 4090, 4096, 4097]) {
      const value = 'QUJD'.repeat(1025).slice(0, length);
      try {
        const outcome = await renderAndServe(value);
        assert.equal(outcome === 'refused', length > MAX_COOKIE_VALUE_LENGTH, `length ${length}: ${outcome}`);
      } catch (error) {
        if (!(error instanceof assert.AssertionError) || !/nginx -t refused/.test(error.message)) throw error;
        refusedByNginx.push(`${length} (${/too long parameter.*?(?= in \/)/.exec(error.message)?.[0] ?? error.message})`);
      }
    }
    assert.deepEqual(refusedByNginx, [], 'values the renderer accepts but nginx -t refuses (refresh-now would exit 70 on every run)');
  });
});

type Step = { kind: 'ok'; value: string } | { kind: 'refused' } | { kind: 'dropped' } | { kind: 'hostile'; header: string };

const HOSTILE_HEADERS = [
  'Set-Cookie: AuthSession=$http_authorization; Path=/',
  'Set-Cookie: AuthSession=abc";return 200 "owned; Path=/',
  'Set-Cookie: AuthSession=; Path=/',
  'Set-Cookie: AuthSession=YWJj{x}; Path=/',
  `Set-Cookie: AuthSession=${'A'.repeat(5000)}; Path=/`,
  'Set-Cookie: AuthSession=YWJj; Path=/\r\nSet-Cookie: AuthSession=ZGVm; Path=/',
];

const STEP: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{16,48}$/).map((value): Step => ({ kind: 'ok', value })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'refused' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'dropped' }) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_HEADERS).map((header): Step => ({ kind: 'hostile', header })) },
);

const EXIT: Record<Step['kind'], number> = { ok: 0, refused: 77, dropped: 69, hostile: 65 };

describe('refresh-now --force through any sequence of login outcomes (scripted backend, real nginx)', { skip }, () => {
  let scripted: ScriptedBackend;
  let stack: IncludeStack;
  let step: Step = { kind: 'refused' };
  let unique = 0;

  before(async () => {
    scripted = await startScriptedBackend(() => {
      switch (step.kind) {
        case 'ok':
          return rawResponse('200 OK', [`Set-Cookie: AuthSession=${step.value}; Version=1; Path=/; HttpOnly`], '{"ok":true,"name":"admin","roles":["_admin"]}');
        case 'refused':
          return rawResponse('401 Unauthorized', [], '{"error":"unauthorized","reason":"Name or password is incorrect."}');
        case 'dropped':
          return Buffer.alloc(0); // the connection closes without a response
        case 'hostile':
          return rawResponse('200 OK', [step.header], '{"ok":true}');
      }
    });
    stack = await startIncludeStack({ names: ['couch'], url: scripted.url, username: 'admin', password: 'prop-secret' });
    // A dropped connection is retried with a 1 s backoff; retries: 0 keeps 48 runs quick.
    Object.assign(stack.sessions[0]!, { retries: 0 });
    await stack.writeConfig();
  });
  after(async () => {
    await stack?.stop();
    await scripted?.stop();
  });

  test('the include is always the last one successfully written, and nginx serves it', async () => {
    const server = stack.nginx.servers[0]!;
    // The model: what must be on disk and served, carried across sequences.
    let expected = { bytes: await stack.includeBytes(), generation: 0, cookie: '' };
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(STEP, { minLength: 1, maxLength: 6 }), async (steps) => {
        for (const s of steps) {
          step = s.kind === 'ok' ? { kind: 'ok', value: `${s.value}${unique++}` } : s;
          const requests = scripted.requests();
          const run = await stack.cli(['refresh-now', '--force']);
          runs++;
          const context = `step ${JSON.stringify(step).slice(0, 120)}: exit ${run.code}, stderr ${run.stderr}`;
          assert.equal(run.code, EXIT[step.kind], context);
          assert.equal(scripted.requests() - requests, 1, `one login request: ${context}`);
          assert.ok(!run.stderr.includes('prop-secret') && (expected.cookie === '' || !run.stderr.includes(expected.cookie.slice('AuthSession='.length))), 'no secret printed');
          const bytes = await stack.includeBytes();
          if (step.kind === 'ok') {
            assert.equal(run.stderr, '', context);
            assert.notDeepEqual(bytes, expected.bytes, `a new include was written: ${context}`);
            assert.match(bytes.toString(), new RegExp(`^set \\$auth_cookie "AuthSession=${step.value}";\\nset \\$auth_cookie_generation "${expected.generation + 1}";$`, 'm'));
            expected = { bytes, generation: expected.generation + 1, cookie: `AuthSession=${step.value}` };
            assert.equal(await server.waitForGeneration(expected.generation), expected.cookie, 'nginx serves the new cookie');
          } else {
            assert.equal(run.stderr.trimEnd().split('\n').length, 1, `one line on stderr: ${context}`);
            assert.deepEqual(bytes, expected.bytes, `the include is the last good one, byte for byte: ${context}`);
            assert.deepEqual(await server.served(), { generation: String(expected.generation), cookie: expected.cookie }, 'nginx still serves the last good one');
          }
        }
      }),
      { numRuns: 8, endOnFailure: true },
    );
    assert.ok(runs >= 8, `${runs} runs`);
  });
});
