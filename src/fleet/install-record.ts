/**
 * Installing a credential the fleet store holds, through the same steps as a login's: under the
 * session's lock, whitelist it for its kind (the store is input like any backend answer), render it
 * at the store's generation, write atomically, nginx -t (restore on failure), record the state.
 * The reload is the caller's (the daemon jitters it). Never installs a lower generation; an
 * equal one only when its cookie differs (a node whose late publish was refused).
 */
import type { AnySessionConfig, Config } from '../config/schema.js';
import { withSessionLock } from '../lock.js';
import { parseIncludeGeneration, renderCredentialInclude } from '../render/include.js';
import { ensureStateDir, writeState, type SessionState } from '../state/store.js';
import { sha256, snapshot } from '../refresh/fresh.js';
import { install } from '../refresh/install.js';
import type { RefreshDeps, RefreshOutcome } from '../refresh/pipeline.js';
import type { FleetRecord } from './store.js';

/** Installs `record` for `session`; the outcome says whether a reload is owed. */
export async function installRecord(config: Config, session: AnySessionConfig, deps: RefreshDeps, record: FleetRecord): Promise<RefreshOutcome> {
  await ensureStateDir(config.state_dir);
  return withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, async () => {
    const snap = await snapshot(config.state_dir, session);
    if (snap.problem) throw snap.problem;
    const previousText = snap.include?.toString('utf8');
    const served = Math.max(snap.state?.generation ?? 0, previousText === undefined ? 0 : (parseIncludeGeneration(previousText, session.variable) ?? 0));
    const base = { session: session.name, generation: served, issued: snap.state?.issued, expires: snap.state?.expires, wrote: false, reloaded: false, exitCode: 0 as const, reloadOwed: false };
    if (record.generation < served) return { ...base, action: 'noop', reason: 'older-than-served' };
    // The store is input like any backend answer: the kind's whitelist, or exit 65 and nothing written.
    deps.credentials(session).assertSafe(record.cookie);
    const issued = new Date(record.issuedAt);
    const expires = new Date(record.expiresAt);
    const text = renderCredentialInclude({ session: session.name, variable: session.variable, header: record.cookie, generation: record.generation, issued, expires });
    if (text === previousText) return { ...base, action: 'noop', reason: 'same-cookie' };
    await install(session, text, snap.include, deps);
    const now = deps.now().toISOString();
    const state: SessionState = {
      ...snap.state,
      generation: record.generation,
      issued: issued.toISOString(),
      expires: expires.toISOString(),
      expiry_source: 'fleet',
      include_sha256: sha256(text),
      reload_pending: true,
      obtained_by: undefined,
      obtained_at: now,
      last: { result: 'ok', at: now },
    };
    await writeState(config.state_dir, session.name, state);
    deps.log.child({ session: session.name }).info({ generation: record.generation, issued_by: record.issuedBy }, 'fleet: installed the generation published by another node');
    return { ...base, action: 'noop', reason: 'fleet', generation: record.generation, issued: state.issued, expires: state.expires, wrote: true, reloadOwed: true, urgent: true };
  });
}
