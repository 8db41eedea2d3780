/**
 * Reloading nginx, two ways behind one interface: SIGHUP to the master named in the pid file
 * (after checking that it is one), or a configured command such as `systemctl reload nginx`.
 */
import { readFile } from 'node:fs/promises';
import { NginxNotRunningError, ReloadError, describeSystemError, hasCode } from '../errors.js';
import type { NginxConfig } from '../config/schema.js';
import { identifyProcess } from './master.js';
import { keyLine, runCommand } from './run.js';

/** Asks nginx to reload. Throws NginxNotRunningError when there is no nginx, ReloadError on failure. */
export interface Reloader {
  /** For messages: "SIGHUP to the master in /run/nginx.pid" or "command: systemctl reload nginx". */
  readonly description: string;
  reload(): Promise<void>;
}

/** Sends SIGHUP to the nginx master whose pid is in `pidFile`, after verifying it is one. */
export function signalReloader(pidFile: string, proc = '/proc'): Reloader {
  return {
    description: `SIGHUP to the nginx master in ${pidFile}`,
    async reload() {
      let text: string;
      try {
        text = await readFile(pidFile, 'utf8');
      } catch (error) {
        if (hasCode(error, 'ENOENT')) throw new NginxNotRunningError(`nginx is not running (no pid file at ${pidFile})`);
        throw new ReloadError(`cannot read nginx's pid file ${pidFile}: ${describeSystemError(error)}; check nginx.pid_file`, { cause: error });
      }
      // `nginx -t` leaves an empty pid file behind when nginx is not running.
      if (text.trim() === '') throw new NginxNotRunningError(`nginx is not running (empty pid file ${pidFile})`);
      const pid = Number(text.trim());
      if (!Number.isSafeInteger(pid) || pid <= 1) throw new ReloadError(`nginx's pid file ${pidFile} does not hold a pid; check nginx.pid_file`);
      const identity = await identifyProcess(pid, proc);
      if (identity.state === 'gone') throw new NginxNotRunningError(`nginx is not running (stale pid file ${pidFile}: pid ${pid} is gone)`);
      if (identity.state === 'other') {
        throw new ReloadError(`pid file ${pidFile} names pid ${pid} ("${identity.command}"), which is not an nginx master; no signal sent; check nginx.pid_file`);
      }
      try {
        process.kill(pid, 'SIGHUP');
      } catch (error) {
        if (hasCode(error, 'ESRCH')) throw new NginxNotRunningError(`nginx is not running (pid ${pid} from ${pidFile} exited)`);
        throw new ReloadError(`cannot signal the nginx master ${pid}: ${describeSystemError(error)}; run as nginx's user, grant CAP_KILL, or set nginx.reload_command`, { cause: error });
      }
    },
  };
}

/** Runs `argv` (no shell) to reload nginx; a non-zero exit is a ReloadError quoting its output. */
export function commandReloader(argv: readonly string[], timeoutSeconds: number): Reloader {
  const shown = argv.join(' ');
  return {
    description: `command: ${shown}`,
    async reload() {
      const result = await runCommand(argv, timeoutSeconds);
      if (result.spawnError) throw new ReloadError(`cannot run the reload command "${shown}" (${result.spawnError}); check nginx.reload_command`);
      if (result.timedOut) throw new ReloadError(`the reload command "${shown}" did not finish within ${timeoutSeconds}s`);
      if (result.exitCode !== 0) throw new ReloadError(`the reload command "${shown}" exited ${result.exitCode}: ${keyLine(result.output)}`);
    },
  };
}

/** The reloader the configuration asks for: a command when `reload_command` is set, else the signal. */
export function createReloader(nginx: NginxConfig): Reloader {
  if (nginx.reload_command !== undefined) {
    const argv = typeof nginx.reload_command === 'string' ? nginx.reload_command.trim().split(/\s+/) : nginx.reload_command;
    return commandReloader(argv, nginx.command_timeout);
  }
  return signalReloader(nginx.pid_file);
}
