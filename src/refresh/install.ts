/**
 * The disk and nginx half of a pass: write an include and have nginx test it (putting the
 * previous one back byte for byte when nginx refuses it), and reload nginx for a generation
 * written earlier. Reloading never happens under the session lock, so a reload that waits (the
 * daemon's rate limit, a slow reload command) holds up no other pass.
 */
import type { AnySessionConfig, Config } from '../config/schema.js';
import { NginxNotRunningError, NginxTestError } from '../errors.js';
import { withSessionLock } from '../lock.js';
import type { Logger } from '../log.js';
import type { Reloader } from '../nginx/reload.js';
import { resolveGroup } from '../render/group.js';
import { removeIfExists, writeAtomic } from '../render/write.js';
import { readState, writeState } from '../state/store.js';

/** Mode of the include: readable by its group (nginx), by nobody else. */
export const INCLUDE_MODE = 0o640;

/** What `install` needs of the pass's I/O. */
export interface InstallDeps {
  testConfig: () => Promise<void>;
}

/**
 * Writes `text` as the include and has nginx test it; when nginx refuses, puts `previous` back
 * byte for byte (or removes the new file when there was none) and throws NginxTestError.
 */
export async function install(session: AnySessionConfig, text: string, previous: Buffer | undefined, deps: InstallDeps): Promise<void> {
  const gid = await resolveGroup(session.group);
  await writeAtomic(session.include, text, { mode: INCLUDE_MODE, gid });
  try {
    await deps.testConfig();
  } catch (error) {
    await restore(session.include, previous, gid);
    if (error instanceof NginxTestError) {
      throw new NginxTestError(`${error.message}; the previous include ${session.include} was ${previous ? 'restored' : 'removed (there was none)'} and nginx was not reloaded`, { cause: error });
    }
    throw error;
  }
}

/** Puts the previous include back byte for byte, or removes a first include that had no predecessor. */
async function restore(path: string, previous: Buffer | undefined, gid: number | undefined): Promise<void> {
  if (previous === undefined) await removeIfExists(path);
  else await writeAtomic(path, previous, { mode: INCLUDE_MODE, gid });
}

/** What a reload did: `reloaded`, or nginx was not running (exit 3, with a warning). */
export interface ReloadOutcome {
  reloaded: boolean;
  warning?: string | undefined;
  exitCode: 0 | 3;
}

/** What `reloadFor` needs of the pass's I/O. */
export interface ReloadDeps {
  reloader: Reloader;
  log: Logger;
}

/**
 * Reloads nginx for `generation`, written earlier with `reload_pending` set, then clears that
 * flag under a short lock when the state still names this generation (a newer one owes its own
 * reload). `urgent` asks a rate-limited reloader not to defer it. Throws ReloadError on failure,
 * leaving the reload owed, so the next pass retries it without a new login.
 */
export async function reloadFor(config: Config, session: AnySessionConfig, deps: ReloadDeps, generation: number, urgent = false): Promise<ReloadOutcome> {
  let outcome: ReloadOutcome;
  try {
    await deps.reloader.reload({ urgent });
    outcome = { reloaded: true, exitCode: 0 };
    deps.log.child({ session: session.name }).info({ generation, via: deps.reloader.description, urgent }, 'nginx reloaded');
  } catch (error) {
    if (!(error instanceof NginxNotRunningError)) throw error;
    // nginx reads the include when it starts, so no reload is owed.
    outcome = { reloaded: false, warning: `${error.message}; the include is written and nginx will read it when it starts`, exitCode: 3 };
  }
  await withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, async () => {
    const state = await readState(config.state_dir, session.name);
    if (state?.reload_pending && state.generation === generation) await writeState(config.state_dir, session.name, { ...state, reload_pending: false });
  });
  return outcome;
}
