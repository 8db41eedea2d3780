/**
 * Notes in the state file about what went wrong, written under the session lock by the caller
 * (`recordFailure`) or here (`recordAlert`), so they never overwrite a concurrent pass's state.
 */
import type { AnySessionConfig, Config } from '../config/schema.js';
import type { RefresherError } from '../errors.js';
import { withSessionLock } from '../lock.js';
import { readState, writeState, type SessionState } from '../state/store.js';

/** Records a failure as the session's last result; the caller holds the lock. */
export async function recordFailure(config: Config, session: AnySessionConfig, error: RefresherError, now: Date): Promise<void> {
  // Re-read: the pass may have recorded progress (a new cookie, a reload owed) before failing.
  // A state path that cannot be read (not a regular file, say) is left as it is: replacing it
  // would hide the problem just reported, and lose the generation it may hold.
  let state: SessionState | undefined;
  try {
    state = await readState(config.state_dir, session.name);
  } catch {
    return;
  }
  const next: SessionState = { ...(state ?? { generation: 0 }), last: { result: 'error', at: now.toISOString(), code: error.code, message: error.message } };
  // The failure itself is what matters to the caller; a state file that cannot be written must not hide it.
  await writeState(config.state_dir, session.name, next).catch(() => undefined);
}

/** Records a condition a later success does not undo (see SessionState.alert), taking the lock. */
export async function recordAlert(config: Config, session: AnySessionConfig, error: RefresherError, now: Date): Promise<void> {
  await withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, async () => {
    const state = await readState(config.state_dir, session.name);
    if (state) await writeState(config.state_dir, session.name, { ...state, alert: { code: error.code, message: error.message, at: now.toISOString() } });
  });
}
