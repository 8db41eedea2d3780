/**
 * Faults on the `refresh-now` path, against the real stack (pouchdb-server behind a real nginx,
 * the built CLI spawned as cron runs it). Where a fault is one no real server produces on demand
 * (a 5xx, a stall, a hostile header, a skewed clock) the login goes to a SCRIPTED backend, named
 * so in each title, while nginx keeps proxying to the real pouchdb-server.
 *
 * What every failed run must leave behind: the exit code of the README's table, exactly one line
 * on stderr (what, why, what to do), the previous include byte for byte, nginx not reloaded and
 * still serving with the earlier cookie, and no password or cookie in the output.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { access, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test, type TestContext } from 'node:test';
import { type CliResult } from '../helpers/cli.js';
import { startCouch, type Couch } from '../helpers/couch.js';
import { startHeaderEcho, upstreamSaw, type HeaderEcho } from '../helpers/header-echo.js';
import { startIncludeStack, type IncludeStack } from '../helpers/include-stack.js';
import { placeholderInclude, skipWithoutNginx } from '../helpers/nginx.js';
import { CLI } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';
import { rawResponse, startScriptedBackend, type Script, type ScriptedBackend } from '../helpers/scripted-backend.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const skip = skipWithoutNginx();

const COUCH_OK_BODY = '{"ok":true,"name":"admin","roles":["_admin"]}';

/** The value of the cookie in an include we wrote. */
function cookieOf(include: Buffer | string): string {
  const match = /AuthSession=([^"]+)"/.exec(include.toString());
  assert.ok(match, `no cookie in the include:\n${include.toString()}`);
  return match[1]!;
}

/** The one line a failed run prints; fails unless stderr holds exactly one line. */
function oneLine(run: CliResult): string {
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${run.stderr}`);
  return lines[0]!;
}

/** Neither the password nor any of the cookies appears in what the run printed. */
function assertNoSecrets(run: CliResult, secrets: string[]): void {
  for (const secret of secrets) assert.ok(!`${run.stdout}\n${run.stderr}`.includes(secret), 'a password or cookie value was printed');
}

/**
 * The state a failed run must leave behind on the stack: the include byte for byte, no reload,
 * and nginx still answering an admin-only endpoint with the earlier cookie.
 */
async function assertPreviousKept(stack: Stack, include: Buffer, reloads: number): Promise<void> {
  assert.deepEqual(await stack.includeBytes(), include, 'the previous include is kept byte for byte');
  assert.equal(await stack.nginx.reloads(), reloads, 'nginx was not reloaded');
  const res = await stack.get('/_config');
  assert.equal(res.status, 200, `nginx still serves with the earlier cookie: ${res.body}`);
}

/** A promise resolved the first time the scripted backend receives a request, and a script that resolves it. */
function onFirstRequest(answer: ReturnType<Script>): { script: Script; received: Promise<void> } {
  let resolve!: () => void;
  const received = new Promise<void>((r) => (resolve = r));
  return {
    received,
    script: () => {
      resolve();
      return answer;
    },
  };
}

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

describe('refresh-now when nginx -t cannot accept the include', { skip }, () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack.stop();
  });

  test('with no previous include, a new include that nginx -t refuses is removed, exit 70, nginx untouched', async () => {
    await rm(stack.include);
    // `set $host ...` is refused by nginx -t: nginx defines $host itself.
    stack.session.variable = 'host';
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 70, run.stderr);
    assert.match(oneLine(run), /nginx -t failed: .*; the previous include .* was removed \(there was none\) and nginx was not reloaded$/);
    assertNoSecrets(run, [stack.couch.admin.password]);
    await assert.rejects(access(stack.include), { code: 'ENOENT' }, 'the refused include is gone');
    assert.deepEqual(await readdir(join(stack.dir, 'include')), [], 'no temporary file is left either');
    assert.equal(await stack.nginx.reloads(), 0);
    assert.equal(await stack.nginx.generation(), '0', 'nginx still serves what it started with');
  });

  test('a missing nginx binary exits 78 naming nginx.binary, and the previous include is restored byte for byte', async () => {
    assert.equal((await stack.cli(['refresh-now'])).code, 0);
    await stack.nginx.waitForGeneration(1);
    const good = await stack.includeBytes();
    const reloads = await stack.nginx.reloads();
    (stack.config.nginx as Record<string, unknown>).binary = '/nonexistent/sbin/nginx';
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now', '--force']);
    assert.equal(run.code, 78, run.stderr);
    assert.match(oneLine(run), /nginx\.binary: cannot run "\/nonexistent\/sbin\/nginx" \(ENOENT\); install nginx or set nginx\.binary/);
    assertNoSecrets(run, [stack.couch.admin.password, cookieOf(good)]);
    await assertPreviousKept(stack, good, reloads);
  });
});

describe('refresh-now when nginx is not running or its pid file is wrong', { skip }, () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack.stop();
  });

  /** A pid that was alive a moment ago and is gone now. */
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await once(child, 'exit');
    return child.pid!;
  }

  test('a stale pid file naming a dead pid exits 3 with one warning line; the new include is written and accepted', async () => {
    const pidFile = join(stack.dir, 'stale.pid');
    const pid = await deadPid();
    await writeFile(pidFile, `${pid}\n`);
    (stack.config.nginx as Record<string, unknown>).pid_file = pidFile;
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stdout, /couch: logged in, generation 1/);
    assert.match(oneLine(run), new RegExp(`warning: nginx is not running \\(stale pid file ${pidFile}: pid ${pid} is gone\\); the include is written and nginx will read it when it starts$`));
    const include = await stack.includeBytes();
    assert.match(include.toString(), /^set \$auth_cookie_generation "1";$/m);
    assertNoSecrets(run, [stack.couch.admin.password, cookieOf(include)]);
    assert.equal(await stack.nginx.reloads(), 0, 'no signal went anywhere');
  });

  test('a pid file holding garbage exits 71 without signalling anything; the include stays and the reload is owed', async () => {
    const pidFile = join(stack.dir, 'garbage.pid');
    await writeFile(pidFile, 'nginx is great\n');
    (stack.config.nginx as Record<string, unknown>).pid_file = pidFile;
    await stack.writeConfig();

    const run = await stack.cli(['refresh-now']);
    assert.equal(run.code, 71, run.stderr);
    assert.match(oneLine(run), new RegExp(`nginx's pid file ${pidFile} does not hold a pid; check nginx\\.pid_file$`));
    const include = await stack.includeBytes();
    assert.match(include.toString(), /^set \$auth_cookie_generation "1";$/m, 'the include passed nginx -t, so it stays');
    assertNoSecrets(run, [stack.couch.admin.password, cookieOf(include)]);
    assert.equal(await stack.nginx.reloads(), 0);
    const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
    assert.equal(status.reload_pending, true);

    // Once the pid file is right, the next cron run pays the reload without logging in again.
    (stack.config.nginx as Record<string, unknown>).pid_file = stack.nginx.pidFile;
    await stack.writeConfig();
    const next = await stack.cli(['refresh-now']);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stdout, /nginx reloaded with generation 1 \(owed from an earlier run\)/);
    await stack.nginx.waitForGeneration(1);
    assert.equal((await stack.get('/_config')).status, 200);
  });
});

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Where a kill is aimed: at spawn, or at a step the run logs (with --verbose) while it holds the lock. */
type KillAnchor = 'spawn' | 'logging in' | 'include written and accepted by nginx -t';
interface KillPlan {
  anchor: KillAnchor;
  delayMs: number;
}

/** Spawns `refresh-now --force --verbose` and, per the plan, SIGKILLs it `delayMs` after the anchor. */
async function runAndMaybeKill(configPath: string, session: string, plan: KillPlan | undefined): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'refresh-now', '--force', '--verbose', '--session', session, '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let armed = false;
  const arm = () => {
    armed = true;
    setTimeout(() => child.kill('SIGKILL'), plan!.delayMs);
  };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
    if (plan && !armed && plan.anchor !== 'spawn' && stderr.includes(`"msg":"${plan.anchor}"`)) arm();
  });
  if (plan?.anchor === 'spawn') arm();
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stderr };
}

const INCLUDE_SHAPE = /^# session-refresher.*\n# issued .*\nset \$auth_cookie "AuthSession=[A-Za-z0-9_-]+";\nset \$auth_cookie_generation "(\d+)";\n$/;

describe('refresh-now runs killed with SIGKILL at random points', { skip }, () => {
  // Four sessions, each with its own include, nginx server block and lock, one worker each. A run
  // killed while it holds a lock blocks its session for the 10 s staleness window; separate
  // sessions let those windows overlap, so 200 runs with eight such kills fit in about a minute.
  const SESSIONS = ['s0', 's1', 's2', 's3'];
  const RUNS_PER_SESSION = 50;
  /** Kills aimed inside the locked section, per session; each costs up to 10 s of stale wait. */
  const LOCKED_KILLS_PER_SESSION = 2;
  /** Chance that any other run is killed 0-40 ms after spawn. */
  const EARLY_KILL_CHANCE = 0.2;

  let couch: Couch;
  let stack: IncludeStack;
  before(async () => {
    couch = await startCouch();
    stack = await startIncludeStack({ names: SESSIONS, url: couch.url, username: couch.admin.name, password: couch.admin.password, upstream: couch.url });
    stack.config.lock_timeout = 30;
    await stack.writeConfig();
  });
  after(async () => {
    await stack?.stop();
    await couch?.stop();
  });

  test('200 runs, a random subset SIGKILLed: a reader never sees a torn include or a generation going back, and a final run succeeds', async (t: TestContext) => {
    const seed = Number(process.env.FAULTS_SEED ?? Date.now() % 2 ** 31);
    t.diagnostic(`seed ${seed} (replay with FAULTS_SEED=${seed})`);
    const random = prng(seed);
    const placeholder = placeholderInclude();

    // The reader: parses every include in a loop until the runs are over. Synchronous reads are
    // the cheapest on CPU, which the 200 spawned runs need; a 0 ms timer per round (about 1,000
    // rounds a second) leaves the event loop free to tend the children.
    const lastSeen = SESSIONS.map(() => 0);
    const problems: string[] = [];
    let reads = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        for (const [i, include] of stack.includes.entries()) {
          let text: string;
          try {
            text = readFileSync(include, 'utf8');
          } catch (error) {
            problems.push(`${SESSIONS[i]}: the include could not be read: ${String(error)}`);
            continue;
          }
          reads++;
          if (text === placeholder) {
            if (lastSeen[i]! > 0) problems.push(`${SESSIONS[i]}: the placeholder came back after generation ${lastSeen[i]}`);
            continue;
          }
          const match = INCLUDE_SHAPE.exec(text);
          if (!match) {
            problems.push(`${SESSIONS[i]}: not a complete include: ${JSON.stringify(text.slice(0, 300))}`);
            continue;
          }
          const generation = Number(match[1]);
          if (generation < lastSeen[i]!) problems.push(`${SESSIONS[i]}: generation went back from ${lastSeen[i]} to ${generation}`);
          lastSeen[i] = Math.max(lastSeen[i]!, generation);
        }
        await new Promise((r) => setTimeout(r, 0));
      }
    })();

    const killed = { early: 0, locked: 0, missed: 0 };
    const failures: string[] = [];
    const elapsed: string[] = [];
    const worker = async (session: string) => {
      const started = Date.now();
      const lockedRuns = new Set<number>();
      while (lockedRuns.size < LOCKED_KILLS_PER_SESSION) lockedRuns.add(Math.floor(random() * (RUNS_PER_SESSION - 1)));
      for (let i = 0; i < RUNS_PER_SESSION; i++) {
        const delayMs = Math.floor(random() * 41);
        let plan: KillPlan | undefined;
        if (lockedRuns.has(i)) plan = { anchor: random() < 0.6 ? 'logging in' : 'include written and accepted by nginx -t', delayMs };
        else if (random() < EARLY_KILL_CHANCE) plan = { anchor: 'spawn', delayMs };
        const result = await runAndMaybeKill(stack.configPath, session, plan);
        if (result.signal === 'SIGKILL') killed[plan!.anchor === 'spawn' ? 'early' : 'locked']++;
        else {
          if (plan) killed.missed++;
          if (result.code !== 0) failures.push(`${session} run ${i}: exit ${result.code}: ${result.stderr.split('\n').filter((l) => !l.startsWith('{')).join(' ')}`);
        }
      }
      elapsed.push(`${session} ${((Date.now() - started) / 1000).toFixed(1)}s`);
    };
    await Promise.all(SESSIONS.map(worker));
    reading = false;
    await reader;

    const leftovers = (await readdir(join(stack.dir, 'include'))).filter((f) => f.endsWith('.tmp'));
    t.diagnostic(`sessions finished: ${elapsed.join(', ')}`);
    t.diagnostic(`killed ${killed.early} early and ${killed.locked} holding the lock (${killed.missed} kills came after the run ended); ${reads} reads; generations seen ${lastSeen.join(', ')}; ${leftovers.length} temp file(s) left by killed writers`);
    assert.deepEqual(problems.slice(0, 5), [], 'every read was a complete include and generations never went back');
    assert.deepEqual(failures, [], 'every run that was not killed succeeded');
    assert.ok(reads >= 1000, `the reader kept reading (${reads} reads)`);
    assert.ok(killed.locked > 0, 'some kills landed while a run held its lock');

    for (const [i, session] of SESSIONS.entries()) {
      const final = await stack.cli(['refresh-now', '--force', '--session', session, '--json']);
      assert.equal(final.code, 0, final.stderr);
      const outcome = JSON.parse(final.stdout).sessions[0];
      assert.ok(outcome.generation > lastSeen[i]!, `${session}: the final generation ${outcome.generation} is above every one seen (${lastSeen[i]})`);
      assert.match((await stack.includeBytes(i)).toString(), INCLUDE_SHAPE);
      const server = stack.nginx.servers[i]!;
      await server.waitForGeneration(outcome.generation);
      assert.equal((await fetch(`${server.url}/_config`)).status, 200, `${session}: nginx serves the backend with the final cookie`);
      await assert.rejects(stat(join(stack.stateDir, `${session}.lock`)), { code: 'ENOENT' }, `${session}: no lock is left behind`);
    }
  });
});

describe('a lock held by a run that was SIGKILLed', { skip }, () => {
  let stack: Stack;
  let scripted: ScriptedBackend;
  before(async () => {
    stack = await startStack();
    scripted = await startScriptedBackend(() => 'stall');
  });
  after(async () => {
    await scripted?.stop();
    await stack?.stop();
  });

  test('blocks the next run until it is 10 s stale, then the next run takes it over and logs in (lock_timeout 30)', async () => {
    stack.config.lock_timeout = 30;
    Object.assign(stack.session, { url: scripted.url, timeout: 60, retries: 0 });
    await stack.writeConfig();
    const { script, received } = onFirstRequest('stall');
    scripted.setScript(script);

    const victim = spawn(process.execPath, [CLI, 'refresh-now', '--force', '--config', stack.configPath], { stdio: 'ignore' });
    const exited = once(victim, 'exit');
    await received; // the login is in flight, so the lock is held
    const lockDir = join(stack.stateDir, 'couch.lock');
    const lockedAt = (await stat(lockDir)).mtimeMs;
    victim.kill('SIGKILL');
    assert.deepEqual(await exited, [null, 'SIGKILL']);
    assert.ok((await stat(lockDir)).isDirectory(), 'the killed run left its lock behind');

    stack.session.url = stack.couch.url;
    await stack.writeConfig();
    const run = await stack.cli(['refresh-now']);
    const finishedAt = Date.now();
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /couch: logged in, generation 1/);
    assert.ok(finishedAt >= lockedAt + 10_000 - 1_000, `the lock was honoured until stale (finished ${finishedAt - lockedAt} ms after it was taken)`);
    await stack.nginx.waitForGeneration(1);
    const res = await stack.get('/_config');
    assert.equal(res.status, 200, `nginx serves the backend with the new cookie: ${res.body}`);
    await assert.rejects(stat(lockDir), { code: 'ENOENT' }, 'the taken-over lock is released');
  });
});

describe('an include directory that is full or read-only (a real tmpfs)', { skip }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.stop();
  });

  test('ENOSPC and EROFS exit 73 with one line each, the include is intact and nginx keeps serving', async (t: TestContext) => {
    const placeholder = await stack.includeBytes();
    const dir = join(stack.dir, 'include');
    const fs = mountTmpfs(dir, 64);
    if ('skip' in fs) {
      t.skip(fs.skip);
      return;
    }
    try {
      await writeFile(stack.include, placeholder, { mode: 0o640 });
      const first = await stack.cli(['refresh-now']);
      assert.equal(first.code, 0, first.stderr);
      await stack.nginx.waitForGeneration(1);
      const good = await stack.includeBytes();
      const secrets = [stack.couch.admin.password, cookieOf(good)];
      const reloads = await stack.nginx.reloads();

      const filler = await fs.fill();
      await assert.rejects(writeFile(join(dir, 'probe'), 'x'), { code: 'ENOSPC' }, 'the tmpfs is full');
      await rm(join(dir, 'probe'));
      const full = await stack.cli(['refresh-now', '--force']);
      assert.equal(full.code, 73, full.stderr);
      assert.match(oneLine(full), /cannot write .*couch\.conf: ENOSPC: no space left on device.*; free space on that filesystem$/);
      assertNoSecrets(full, secrets);
      await assertPreviousKept(stack, good, reloads);
      assert.deepEqual((await readdir(dir)).sort(), ['couch.conf', 'filler'], 'the failed temp file was removed');

      await rm(filler);
      fs.remountReadOnly();
      const readOnly = await stack.cli(['refresh-now', '--force']);
      assert.equal(readOnly.code, 73, readOnly.stderr);
      assert.match(oneLine(readOnly), /EROFS: read-only file system; the filesystem is read-only; point the include at a writable directory$/);
      assertNoSecrets(readOnly, secrets);
      await assertPreviousKept(stack, good, reloads);
      const status = JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0];
      assert.equal(status.last_error.code, 'ERR_CANNOT_WRITE');
      assert.equal(status.generation, 1);
    } finally {
      fs.unmount();
    }
  });
});

/**
 * A SCRIPTED backend whose clock is `skewMs` off: its Date header and the issue time it encodes
 * in a CouchDB-shaped AuthSession (base64url of "admin:<hex seconds>:<20 bytes>") both use it.
 */
function skewedCouch(skewMs: number, extraAttributes = ''): Script {
  return () => {
    const now = Date.now() + skewMs;
    const value = Buffer.concat([Buffer.from(`admin:${Math.floor(now / 1000).toString(16).toUpperCase()}:`), randomBytes(20)]).toString('base64url');
    assert.match(value, /^[A-Za-z0-9_-]+$/);
    return rawResponse('200 OK', [`Date: ${new Date(now).toUTCString()}`, `Set-Cookie: AuthSession=${value}; Version=1; Path=/; HttpOnly${extraAttributes}`], COUCH_OK_BODY);
  };
}

describe('a backend whose clock is off by an hour (scripted)', { skip }, () => {
  let stack: Stack;
  let scripted: ScriptedBackend;
  beforeEach(async () => {
    stack = await startStack();
    scripted = await startScriptedBackend(() => 'stall');
    stack.session.url = scripted.url;
    await stack.writeConfig();
  });
  afterEach(async () => {
    await scripted.stop();
    await stack.stop();
  });

  const secondsLeft = async (): Promise<number> => JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0].seconds_left as number;

  for (const { skew, label } of [
    { skew: 3_600_000, label: 'ahead' },
    { skew: -3_600_000, label: 'behind' },
  ]) {
    test(`an hour ${label}, a cookie without Max-Age lasts \`lifetime\` (600 s) in local time and the next run is a no-op`, async () => {
      scripted.setScript(skewedCouch(skew));
      const run = await stack.cli(['refresh-now']);
      assert.equal(run.code, 0, run.stderr);
      const left = await secondsLeft();
      assert.ok(Math.abs(left - 600) <= 5, `seconds_left ${left}, expected 600 ± 5`);

      const requests = scripted.requests();
      const again = await stack.cli(['refresh-now']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /couch: fresh, generation 1/);
      assert.equal(scripted.requests(), requests, 'no second login');
    });

    test(`an hour ${label}, a cookie with Max-Age=120 has about 120 s left whatever the Date header says`, async () => {
      scripted.setScript(skewedCouch(skew, '; Max-Age=120'));
      const run = await stack.cli(['refresh-now']);
      assert.equal(run.code, 0, run.stderr);
      const left = await secondsLeft();
      assert.ok(Math.abs(left - 120) <= 5, `seconds_left ${left}, expected 120 ± 5`);
    });
  }
});
