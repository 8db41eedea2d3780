/**
 * The daemon (`session-refresher run`) as a real child process, with its JSON log lines
 * watched so tests can wait for events ("ready", "fallback: request replayed", "stopped").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { LineWatcher } from './lines.js';
import { CLI } from './paths.js';

export interface Daemon {
  child: ChildProcess;
  log: LineWatcher;
  /** Log lines parsed as JSON (non-JSON lines skipped). */
  events(): Record<string, unknown>[];
  /** Waits for a log line whose msg matches (lines already logged count). */
  waitForMsg(pattern: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** A mark in the log; `waitForMsgAfter(mark, …)` considers only lines logged after it. */
  mark(): number;
  waitForMsgAfter(mark: number, pattern: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

/**
 * Starts `session-refresher run --config <configPath>` and waits for its "ready" line. `gid`
 * (root only) runs it with that group, as systemd's Group= does.
 */
export async function startDaemon(configPath: string, env: NodeJS.ProcessEnv = {}, options: { gid?: number } = {}): Promise<Daemon> {
  const child = spawn(process.execPath, [CLI, 'run', '--config', configPath], {
    env: { ...process.env, SESSION_REFRESHER_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  const log = new LineWatcher(child.stderr!);
  child.stdout!.resume();
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const parse = (line: string): Record<string, unknown> | undefined => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  const daemon: Daemon = {
    child,
    log,
    exited,
    events: () => log.lines.map(parse).filter((e): e is Record<string, unknown> => e !== undefined),
    async waitForMsg(pattern, timeoutMs = 20_000) {
      const line = await log.waitFor(new RegExp(`"msg":"${pattern.source}`), timeoutMs, `daemon log ${pattern}`);
      return parse(line)!;
    },
    mark: () => log.lines.length,
    async waitForMsgAfter(mark, pattern, timeoutMs = 20_000) {
      const line = await log.waitFor(new RegExp(`"msg":"${pattern.source}`), timeoutMs, `daemon log ${pattern}`, mark);
      return parse(line)!;
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await exited;
      return code;
    },
  };
  const early = exited.then(([code]) => {
    throw new Error(`the daemon exited (${code}) before it was ready:\n${log.lines.join('\n')}`);
  });
  early.catch(() => undefined);
  await Promise.race([daemon.waitForMsg(/ready/, 30_000), early]);
  return daemon;
}
