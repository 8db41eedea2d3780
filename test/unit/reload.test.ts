/**
 * Reloading nginx: telling an nginx master from other processes, the signal reloader, the
 * command reloader, and one contract both reloaders must keep.
 *
 * "nginx" here is a real child process standing in for the master: it counts the SIGHUPs it
 * receives and reports the count when sent SIGUSR2. Only /proc is faked, and only for the
 * question "is this pid an nginx master?".
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { nginxSchema } from '../../src/config/schema.js';
import { ExitCode, NginxNotRunningError, ReloadError } from '../../src/errors.js';
import { identifyProcess } from '../../src/nginx/master.js';
import { commandReloader, createReloader, signalReloader, type Reloader } from '../../src/nginx/reload.js';

const TIMEOUT = { timeout: 15_000 };

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'session-refresher-reload-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `<proc>/<pid>/cmdline` as the kernel shows it: arguments separated by NUL. */
async function fakeProcEntry(proc: string, pid: number, args: readonly string[]): Promise<void> {
  await mkdir(join(proc, String(pid)), { recursive: true });
  await writeFile(join(proc, String(pid), 'cmdline'), args.map((a) => `${a}\0`).join(''), 'latin1');
}

/** A real process standing in for the nginx master; it records every SIGHUP. */
interface FakeMaster {
  pid: number;
  /**
   * How many SIGHUPs it has handled, once that is at least `atLeast`. Asked with SIGUSR2; Node
   * may handle a SIGUSR2 sent after a SIGHUP first (its threads take signals in any order), so
   * the question is asked again until the count is reached (the test's timeout bounds it).
   */
  hupsReceived(atLeast?: number): Promise<number>;
  isAlive(): boolean;
}

const FAKE_MASTER_SCRIPT = `
let hups = 0;
process.on('SIGHUP', () => { hups += 1; });
process.on('SIGUSR2', () => { process.stdout.write('hups=' + hups + '\\n'); });
process.stdout.write('ready\\n');
setInterval(() => {}, 1000);
`;

async function startFakeMaster(t: TestContext): Promise<FakeMaster> {
  const child: ChildProcessByStdio<null, Readable, null> = spawn(process.execPath, ['-e', FAKE_MASTER_SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  });
  const nextLine = lineReader(child.stdout);
  assert.equal(await nextLine(), 'ready');
  const pid = child.pid;
  assert.ok(pid !== undefined);
  return {
    pid,
    async hupsReceived(atLeast = 0) {
      for (;;) {
        process.kill(pid, 'SIGUSR2');
        const line = await nextLine();
        const match = /^hups=(\d+)$/.exec(line);
        assert.ok(match, `unexpected output from the fake master: ${line}`);
        if (Number(match[1]) >= atLeast) return Number(match[1]);
      }
    },
    isAlive: () => child.exitCode === null && child.signalCode === null,
  };
}

/** Returns a function giving the stream's next line; it rejects once the stream has ended. */
function lineReader(stream: Readable): () => Promise<string> {
  const buffered: string[] = [];
  const waiting: { resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
  let ended = false;
  const lines = createInterface({ input: stream });
  lines.on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(line);
    else buffered.push(line);
  });
  lines.on('close', () => {
    ended = true;
    for (const waiter of waiting.splice(0)) waiter.reject(new Error('the fake master exited'));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const line = buffered.shift();
      if (line !== undefined) resolve(line);
      else if (ended) reject(new Error('the fake master exited'));
      else waiting.push({ resolve, reject });
    });
}

function isReloadError(error: unknown): error is ReloadError {
  return error instanceof ReloadError && error.exitCode === ExitCode.RELOAD_FAILED && error.exitCode === 71 && error.code === 'ERR_RELOAD_FAILED';
}

function isNotRunning(error: unknown): error is NginxNotRunningError {
  return error instanceof NginxNotRunningError && error.exitCode === ExitCode.NGINX_NOT_RUNNING && error.exitCode === 3;
}

async function countLines(path: string): Promise<number> {
  try {
    return (await readFile(path, 'utf8')).split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** A node argv that appends a line to `marker` each time it runs: a reload command nginx accepts. */
function appendingCommand(marker: string, exitCode = 0): string[] {
  return [process.execPath, '-e', `require('node:fs').appendFileSync(${JSON.stringify(marker)}, 'reload\\n'); process.exit(${exitCode});`];
}

// ---------------------------------------------------------------------------------------------
// The Reloader contract (STYLE.md habit 10), run against both implementations.
//
// Success is covered too, not only failure: the signal reloader can be driven to success without
// a real nginx by faking /proc so that it identifies a real child process as "nginx: master
// process", then counting the SIGHUPs that child actually receives. The command reloader's
// "nginx" is a command that records each run. What is not in the contract is "nginx is not
// running": the signal reloader detects it (exit 3), a reload command cannot tell it apart from
// any other failure, so that case is tested for the signal reloader alone below.

interface ReloadSetup {
  reloader: Reloader;
  /** How many reload requests the stand-in nginx has received so far. */
  /** Reloads nginx has received, once there are at least `atLeast`. */
  reloadsReceived(atLeast?: number): Promise<number>;
}

interface ReloaderHarness {
  /** A reloader whose nginx is running and accepts the reload. */
  accepting(t: TestContext): Promise<ReloadSetup>;
  /** A reloader that cannot reload nginx (the pid is not a master / the command fails). */
  refusing(t: TestContext): Promise<ReloadSetup>;
}

function reloaderContract(name: string, harness: ReloaderHarness): void {
  describe(`${name} keeps the Reloader contract`, () => {
    it('resolves when nginx accepts the reload, having asked nginx exactly once', TIMEOUT, async (t) => {
      const { reloader, reloadsReceived } = await harness.accepting(t);
      assert.equal(await reloadsReceived(), 0);
      await reloader.reload();
      assert.equal(await reloadsReceived(1), 1);
    });

    it('rejects with ReloadError (exit code 71) when nginx cannot be reloaded, without reloading it', TIMEOUT, async (t) => {
      const { reloader, reloadsReceived } = await harness.refusing(t);
      await assert.rejects(reloader.reload(), isReloadError);
      assert.equal(await reloadsReceived(), 0);
    });

    it('describes how it reloads, for messages', TIMEOUT, async (t) => {
      const { reloader } = await harness.accepting(t);
      assert.match(reloader.description, /^(SIGHUP to the nginx master in \/|command: )/);
    });
  });
}

async function signalSetup(t: TestContext, cmdline: readonly string[]): Promise<ReloadSetup> {
  const dir = await tempDir(t);
  const master = await startFakeMaster(t);
  const proc = join(dir, 'proc');
  await fakeProcEntry(proc, master.pid, cmdline);
  const pidFile = join(dir, 'nginx.pid');
  await writeFile(pidFile, `${master.pid}\n`);
  return { reloader: signalReloader(pidFile, proc), reloadsReceived: (atLeast) => master.hupsReceived(atLeast) };
}

reloaderContract('signalReloader', {
  accepting: (t) => signalSetup(t, ['nginx: master process /usr/sbin/nginx -g daemon off;']),
  refusing: (t) => signalSetup(t, ['sleep', '100']),
});

reloaderContract('commandReloader', {
  async accepting(t) {
    const marker = join(await tempDir(t), 'reloads');
    return { reloader: commandReloader(appendingCommand(marker), 30), reloadsReceived: () => countLines(marker) };
  },
  async refusing(t) {
    const marker = join(await tempDir(t), 'reloads');
    const failing = [process.execPath, '-e', 'process.stderr.write("nginx.service is not active, cannot reload.\\n"); process.exit(1);'];
    return { reloader: commandReloader(failing, 30), reloadsReceived: () => countLines(marker) };
  },
});

// ---------------------------------------------------------------------------------------------

describe('identifyProcess', () => {
  it('recognises an nginx master by the title nginx gives it', async (t) => {
    const proc = await tempDir(t);
    await fakeProcEntry(proc, 4242, ['nginx: master process /usr/sbin/nginx']);
    assert.deepEqual(await identifyProcess(4242, proc), { state: 'nginx-master' });
  });

  it('names any other program, its arguments joined by spaces', async (t) => {
    const proc = await tempDir(t);
    await fakeProcEntry(proc, 4242, ['sleep', '100']);
    assert.deepEqual(await identifyProcess(4242, proc), { state: 'other', command: 'sleep 100' });
  });

  it('does not take an nginx worker for the master', async (t) => {
    const proc = await tempDir(t);
    await fakeProcEntry(proc, 4243, ['nginx: worker process']);
    assert.equal((await identifyProcess(4243, proc)).state, 'other');
  });

  it('shortens a long command line to 80 characters and an ellipsis', async (t) => {
    const proc = await tempDir(t);
    await fakeProcEntry(proc, 4242, ['java', `-Dlong=${'x'.repeat(200)}`]);
    const identity = await identifyProcess(4242, proc);
    assert.equal(identity.state, 'other');
    assert.equal(identity.state === 'other' ? identity.command : '', `java -Dlong=${'x'.repeat(68)}…`);
  });

  it('reports a pid without a /proc entry as gone', async (t) => {
    assert.deepEqual(await identifyProcess(4242, await tempDir(t)), { state: 'gone' });
  });

  it('reports a pid with an empty command line (a zombie) as gone', async (t) => {
    const proc = await tempDir(t);
    await fakeProcEntry(proc, 4242, []);
    assert.deepEqual(await identifyProcess(4242, proc), { state: 'gone' });
  });

  it('identifies a real process through the real /proc', TIMEOUT, async (t) => {
    const master = await startFakeMaster(t);
    const identity = await identifyProcess(master.pid);
    assert.equal(identity.state, 'other');
    assert.ok(identity.state === 'other' && identity.command.startsWith(`${process.execPath} -e`), JSON.stringify(identity));
  });
});

describe('signalReloader', () => {
  it('throws NginxNotRunningError (exit code 3) when the pid file is missing', async (t) => {
    const pidFile = join(await tempDir(t), 'nginx.pid');
    await assert.rejects(signalReloader(pidFile).reload(), (error: unknown) => isNotRunning(error) && error.message.includes(pidFile));
  });

  it('throws NginxNotRunningError when the pid file names a pid that is gone', async (t) => {
    const dir = await tempDir(t);
    const proc = join(dir, 'proc');
    await mkdir(proc);
    const pidFile = join(dir, 'nginx.pid');
    await writeFile(pidFile, '4242\n');
    await assert.rejects(signalReloader(pidFile, proc).reload(), (error: unknown) => isNotRunning(error) && /stale pid file/.test(error.message) && error.message.includes('4242'));
  });

  it('throws NginxNotRunningError for the empty pid file `nginx -t` leaves behind', async (t) => {
    const dir = await tempDir(t);
    const pidFile = join(dir, 'nginx.pid');
    for (const content of ['', '\n', '  \n']) {
      await writeFile(pidFile, content);
      await assert.rejects(signalReloader(pidFile, join(dir, 'proc')).reload(), (error: unknown) => isNotRunning(error) && error.message.includes(pidFile));
    }
  });

  for (const content of ['nginx\n', '1\n', '-5\n', '12.5\n']) {
    it(`throws ReloadError when the pid file holds ${JSON.stringify(content)}, not a pid`, async (t) => {
      const dir = await tempDir(t);
      const pidFile = join(dir, 'nginx.pid');
      await writeFile(pidFile, content);
      await assert.rejects(signalReloader(pidFile, join(dir, 'proc')).reload(), (error: unknown) => isReloadError(error) && error.message.includes(pidFile));
    });
  }

  it('throws ReloadError at once, saying what is there, when the pid file is a FIFO (a plain read would block forever)', async (t) => {
    const pidFile = join(await tempDir(t), 'nginx.pid');
    assert.equal(spawnSync('mkfifo', [pidFile]).status, 0);
    await assert.rejects(signalReloader(pidFile).reload(), (error: unknown) => isReloadError(error) && error.message === `cannot read nginx's pid file ${pidFile}: is a FIFO (named pipe), not a regular file; check nginx.pid_file`);
  });

  it('throws ReloadError naming the program when the pid is not an nginx master', async (t) => {
    const dir = await tempDir(t);
    const proc = join(dir, 'proc');
    await fakeProcEntry(proc, 4242, ['sleep', '100']);
    const pidFile = join(dir, 'nginx.pid');
    await writeFile(pidFile, '4242\n');
    await assert.rejects(signalReloader(pidFile, proc).reload(), (error: unknown) => {
      assert.ok(isReloadError(error), `expected ReloadError, got ${String(error)}`);
      assert.match(error.message, /pid 4242 \("sleep 100"\)/);
      assert.match(error.message, /no signal sent/);
      return true;
    });
  });

  it('sends no signal to a live process that is not nginx (real /proc)', TIMEOUT, async (t) => {
    const master = await startFakeMaster(t);
    const pidFile = join(await tempDir(t), 'nginx.pid');
    await writeFile(pidFile, `${master.pid}\n`);
    await assert.rejects(signalReloader(pidFile).reload(), isReloadError);
    assert.equal(await master.hupsReceived(), 0);
    assert.ok(master.isAlive(), 'the process named by the pid file must still be running');
  });
});

describe('commandReloader', () => {
  it('resolves when the command exits 0', TIMEOUT, async () => {
    await commandReloader([process.execPath, '-e', 'process.exit(0)'], 30).reload();
  });

  it('rejects with ReloadError when the command exits non-zero', TIMEOUT, async () => {
    await assert.rejects(commandReloader(['false'], 30).reload(), (error: unknown) => isReloadError(error) && /"false" exited 1/.test(error.message));
  });

  it("quotes the command's telling output line in the error", TIMEOUT, async () => {
    const argv = [process.execPath, '-e', 'console.log("Reloading nginx"); console.error("Job for nginx.service failed because the control process exited"); process.exit(1)'];
    await assert.rejects(commandReloader(argv, 30).reload(), (error: unknown) => isReloadError(error) && /Job for nginx\.service failed/.test(error.message));
  });

  it('rejects with ReloadError naming a command that does not exist', TIMEOUT, async () => {
    const missing = '/nonexistent/session-refresher-reload-nginx';
    await assert.rejects(commandReloader([missing, 'now'], 30).reload(), (error: unknown) => {
      assert.ok(isReloadError(error), `expected ReloadError, got ${String(error)}`);
      assert.ok(error.message.includes(`${missing} now`), error.message);
      assert.match(error.message, /ENOENT/);
      return true;
    });
  });

  it('rejects with ReloadError when the command outlives its timeout', TIMEOUT, async () => {
    const argv = [process.execPath, '-e', 'setInterval(() => {}, 1000)'];
    await assert.rejects(commandReloader(argv, 0.5).reload(), (error: unknown) => isReloadError(error) && /did not finish within 0\.5s/.test(error.message));
  });
});

describe('createReloader', () => {
  it('runs reload_command when it is configured as a list', TIMEOUT, async (t) => {
    const marker = join(await tempDir(t), 'reloads');
    const reloader = createReloader(nginxSchema.parse({ reload_command: appendingCommand(marker) }));
    assert.match(reloader.description, /^command: /);
    await reloader.reload();
    assert.equal(await countLines(marker), 1);
  });

  it('runs reload_command given as one string, split on whitespace (no shell)', TIMEOUT, async (t) => {
    const dir = await tempDir(t);
    const marker = join(dir, 'reloads');
    const script = join(dir, 'reload.cjs');
    await writeFile(script, `require('node:fs').appendFileSync(${JSON.stringify(marker)}, process.argv.slice(2).join(' ') + '\\n');\n`);
    const reloader = createReloader(nginxSchema.parse({ reload_command: `  ${process.execPath}   ${script} reload   nginx ` }));
    await reloader.reload();
    assert.equal(await readFile(marker, 'utf8'), 'reload nginx\n');
  });

  it('signals the master in pid_file when no reload_command is configured', async (t) => {
    const pidFile = join(await tempDir(t), 'nginx.pid');
    const reloader = createReloader(nginxSchema.parse({ pid_file: pidFile }));
    assert.equal(reloader.description, `SIGHUP to the nginx master in ${pidFile}`);
    await assert.rejects(reloader.reload(), isNotRunning);
  });
});
