/**
 * `refresh-now` runs killed with SIGKILL, against the real stack (pouchdb-server behind a real
 * nginx, the built CLI spawned): at random points during 200 runs, and while holding the
 * session's lock. A reader must never see a torn include or a generation going back, and a lock
 * left by a killed run must be honoured until stale, then taken over.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { startCouch, type Couch } from '../helpers/couch.js';
import { onFirstRequest } from '../helpers/fault-checks.js';
import { startIncludeStack, type IncludeStack } from '../helpers/include-stack.js';
import { placeholderInclude, skipWithoutNginx } from '../helpers/nginx.js';
import { CLI } from '../helpers/paths.js';
import { startScriptedBackend, type ScriptedBackend } from '../helpers/scripted-backend.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

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
