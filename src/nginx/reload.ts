/**
 * Reloading nginx, two ways behind one interface: SIGHUP to the master named in the pid file
 * (after checking that it is one), or a configured command such as `systemctl reload nginx`.
 */
import { NginxNotRunningError, ReloadError, describeSystemError, hasCode } from '../errors.js';
import type { NginxConfig } from '../config/schema.js';
import { lookupMaster } from './master.js';
import { keyLine, runCommand } from './run.js';

/** Asks nginx to reload. Throws NginxNotRunningError when there is no nginx, ReloadError on failure. */
export interface Reloader {
  /** For messages: "SIGHUP to the master in /run/nginx.pid" or "command: systemctl reload nginx". */
  readonly description: string;
  /**
   * `urgent`: the include replaces a cookie the backend refuses, so a rate-limited reloader must
   * not defer it (plain reloaders reload at once anyway).
   */
  reload(options?: { urgent?: boolean }): Promise<void>;
  /** Gives up reloads still waiting (a rate-limited reloader at shutdown); they stay owed in the state. */
  close?(): void;
}

/** Sends SIGHUP to the nginx master whose pid is in `pidFile`, after verifying it is one. */
export function signalReloader(pidFile: string, proc = '/proc'): Reloader {
  return {
    description: `SIGHUP to the nginx master in ${pidFile}`,
    async reload() {
      const master = await lookupMaster(pidFile, proc);
      switch (master.state) {
        case 'no-pid-file':
          throw new NginxNotRunningError(`nginx is not running (no pid file at ${pidFile})`);
        case 'empty':
          throw new NginxNotRunningError(`nginx is not running (empty pid file ${pidFile})`);
        case 'unreadable':
          throw new ReloadError(`cannot read nginx's pid file ${pidFile}: ${describeSystemError(master.error)}; check nginx.pid_file`, { cause: master.error });
        case 'not-a-pid':
          throw new ReloadError(`nginx's pid file ${pidFile} does not hold a pid; check nginx.pid_file`);
        case 'gone':
          throw new NginxNotRunningError(`nginx is not running (stale pid file ${pidFile}: pid ${master.pid} is gone)`);
        case 'other':
          throw new ReloadError(`pid file ${pidFile} names pid ${master.pid} ("${master.command}"), which is not an nginx master; no signal sent; check nginx.pid_file`);
      }
      const pid = master.pid;
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
