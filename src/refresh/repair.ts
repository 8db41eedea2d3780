/**
 * Repairs that need no new cookie: blanking an expired cookie the daemon could not replace, and
 * putting back an include someone edited or deleted. Both write under the session lock and
 * reload after it, like a pass.
 */
import type { AnySessionConfig, Config } from '../config/schema.js';
import { withSessionLock } from '../lock.js';
import { parseIncludeGeneration, renderEmptyInclude } from '../render/include.js';
import { ensureStateDir, writeState, type SessionState } from '../state/store.js';
import { sha256, snapshot } from './fresh.js';
import { install } from './install.js';
import { reloadOwed, type RefreshDeps, type RefreshOutcome } from './pipeline.js';

/**
 * Called by the daemon when the cookie has expired and no login succeeded: an expired cookie is
 * never served, so the include falls back to an empty value (a new generation) and nginx is
 * reloaded at once. Does nothing when a valid cookie appeared meanwhile or the include is already empty.
 */
export async function blankExpiredSession(config: Config, session: AnySessionConfig, deps: RefreshDeps): Promise<RefreshOutcome> {
  await ensureStateDir(config.state_dir);
  const written = await withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, async () => {
    const snap = await (deps.snapshot ?? snapshot)(config.state_dir, session);
    if (snap.problem) throw snap.problem;
    const state = snap.state ?? { generation: 0 };
    const generation = Math.max(state.generation, parseIncludeGeneration(snap.include?.toString('utf8') ?? '', session.variable) ?? 0);
    const intact = snap.includeSha256 !== undefined && snap.includeSha256 === state.include_sha256;
    const valid = state.expires !== undefined && Date.parse(state.expires) > deps.now().getTime();
    if (intact && (valid || state.expires === undefined)) return { generation, blanked: false };
    const text = renderEmptyInclude(session.name, session.variable, generation + 1);
    await install(session, text, snap.include, deps);
    deps.log.child({ session: session.name }).warn({ generation: generation + 1 }, 'cookie expired with no successful login: include set to an empty value');
    const next: SessionState = { ...state, generation: generation + 1, issued: undefined, expires: undefined, expiry_source: undefined, obtained_by: undefined, include_sha256: sha256(text), reload_pending: true };
    await writeState(config.state_dir, session.name, next);
    return { generation: generation + 1, blanked: true };
  });
  const base = { session: session.name, generation: written.generation, reloadOwed: false };
  if (!written.blanked) return { ...base, action: 'noop', wrote: false, reloaded: false, exitCode: 0 };
  return { ...base, action: 'blank', reason: 'expired', wrote: true, ...(await reloadOwed(config, session, deps, written.generation, true)) };
}

/**
 * Puts `text` (an include this process saw match the state file) back after someone edited or
 * deleted it, without a new login. Returns false, doing nothing, when the state has moved on to
 * another include meanwhile (the caller should refresh instead).
 */
export async function reinstallInclude(config: Config, session: AnySessionConfig, deps: RefreshDeps, text: Buffer): Promise<boolean> {
  const generation = await withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, async () => {
    const snap = await (deps.snapshot ?? snapshot)(config.state_dir, session);
    if (snap.problem) throw snap.problem;
    const wanted = sha256(text);
    if (snap.state?.include_sha256 !== wanted) return undefined;
    if (snap.includeSha256 === wanted) return -1;
    await install(session, text.toString('utf8'), snap.include, deps);
    deps.log.child({ session: session.name }).warn({ generation: snap.state.generation }, 'include was changed or removed by hand: restored');
    await writeState(config.state_dir, session.name, { ...snap.state, reload_pending: true });
    return snap.state.generation;
  });
  if (generation === undefined) return false;
  if (generation >= 0) await reloadOwed(config, session, deps, generation, true);
  return true;
}
