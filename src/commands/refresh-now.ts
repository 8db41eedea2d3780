/**
 * `refresh-now`: one pass over the selected sessions. A session whose cookie is fresh costs two
 * small file reads; the login, nginx and lock machinery is loaded only when there is work.
 * A cookie past half its life is renewed (`GET /_session`) before a login is tried, unless
 * `--force`. With a session's `verify_url`, the command returns once nginx serves the new
 * generation, so `refresh-now && curl ...` never meets an old worker.
 */
import { ExitCode, RefresherError, type ExitCodeValue } from '../errors.js';
import { pendingWork, snapshot } from '../refresh/fresh.js';
import type { RefreshOutcome } from '../refresh/pipeline.js';
import { loadFromOptions, selectSessions, stdOutput, type GlobalOptions } from './context.js';

export interface RefreshNowOptions extends GlobalOptions {
  force?: boolean;
  session?: string;
  json?: boolean;
}

type Row = RefreshOutcome | { session: string; error: { code: string; message: string; exit_code: number } };

/** Runs the command; returns the exit code (the first failure's, else 3 if nginx was down, else 0). */
export async function refreshNow(options: RefreshNowOptions): Promise<ExitCodeValue> {
  const { config } = loadFromOptions(options);
  const sessions = selectSessions(config, options.session);
  const rows: Row[] = [];
  let pipeline: typeof import('../refresh/pipeline.js') | undefined;
  let deps: import('../refresh/pipeline.js').RefreshDeps | undefined;

  for (const session of sessions) {
    const now = new Date();
    const snap = await snapshot(config.state_dir, session);
    if (pendingWork(snap, now, { force: options.force }) === undefined) {
      rows.push({ session: session.name, action: 'noop', generation: snap.state!.generation, issued: snap.state!.issued, expires: snap.state!.expires, wrote: false, reloadOwed: false, reloaded: false, exitCode: 0 });
      continue;
    }
    if (!pipeline || !deps) {
      pipeline = await import('../refresh/pipeline.js');
      const { createLogger } = await import('../log.js');
      const root = await createLogger(options.verbose ? 'debug' : config.log_level === 'info' ? 'warn' : config.log_level);
      deps = pipeline.defaultDeps(config, root.child({ component: 'refresh-now' }));
    }
    try {
      const outcome = await pipeline.refreshSession(config, session, deps, { force: options.force ?? false, renew: !options.force });
      if (outcome.reloaded && session.verify_url) await verifyServed(session.verify_url, outcome.generation, config.daemon.verify_timeout);
      rows.push(outcome);
    } catch (error) {
      if (!(error instanceof RefresherError)) throw error;
      rows.push({ session: session.name, error: { code: error.code, message: error.message, exit_code: error.exitCode } });
    }
  }
  report(rows, options.json ?? false);
  const failed = rows.find((r): r is Extract<Row, { error: unknown }> => 'error' in r);
  if (failed) return failed.error.exit_code as ExitCodeValue;
  return rows.some((r) => 'exitCode' in r && r.exitCode === 3) ? ExitCode.NGINX_NOT_RUNNING : ExitCode.OK;
}

/** Waits until nginx serves `generation` at `url`; throws ReloadNotVerifiedError (exit 4) when it does not in time. */
async function verifyServed(url: string, generation: number, timeoutSeconds: number): Promise<void> {
  const { waitForGeneration } = await import('../daemon/verify.js');
  if (await waitForGeneration(url, generation, timeoutSeconds * 1000)) return;
  const { ReloadNotVerifiedError } = await import('../errors.js');
  throw new ReloadNotVerifiedError(`nginx was reloaded but ${url} did not show generation ${generation} within ${timeoutSeconds}s; check verify_url and nginx's error log, or raise daemon.verify_timeout`);
}

function report(rows: Row[], json: boolean): void {
  if (json) {
    stdOutput.line(JSON.stringify({ sessions: rows }));
    return;
  }
  for (const row of rows) {
    if ('error' in row) {
      stdOutput.warn(`${row.session}: ${row.error.message}`);
      continue;
    }
    const left = row.expires ? Math.round((Date.parse(row.expires) - Date.now()) / 1000) : undefined;
    const when = left === undefined ? '' : `, expires ${row.expires} (in ${left}s)`;
    if (row.action === 'noop') stdOutput.line(`${row.session}: fresh, generation ${row.generation}${when}; nothing to do`);
    else if (row.action === 'reload') stdOutput.line(`${row.session}: nginx reloaded with generation ${row.generation} (owed from an earlier run)`);
    else stdOutput.line(`${row.session}: ${row.action === 'renewal' ? 'renewed without the password' : 'logged in'}, generation ${row.generation}${when}; ${row.wrote ? 'include written' : 'include unchanged'}${row.reloaded ? ', nginx reloaded' : ''}`);
    if (row.warning) stdOutput.warn(`${row.session}: warning: ${row.warning}`);
  }
}
