/**
 * One refresh pass for one session: lock -> (fresh? done) -> renew or log in -> render -> write
 * -> nginx -t (restore the previous include on failure) -> state -> unlock -> reload.
 *
 * Whatever fails, the include on disk is either untouched or restored byte for byte, and the
 * failure is recorded in the state file. The reload happens after the lock is released, so a
 * reload that waits never holds up another pass. The I/O steps are passed in (`RefreshDeps`)
 * so the daemon can share them and tests can observe them.
 */
import type { AnySessionConfig, Config } from '../config/schema.js';
import { credentialKind } from '../credentials/factory.js';
import type { CredentialKind } from '../credentials/kind.js';
import { RefresherError } from '../errors.js';
import { withSessionLock } from '../lock.js';
import { silentLogger, type Logger } from '../log.js';
import { testNginxConfig } from '../nginx/test-config.js';
import { createReloader } from '../nginx/reload.js';
import { parseIncludeCookie, parseIncludeGeneration, renderCredentialInclude } from '../render/include.js';
import { MAX_LIFETIME_SECONDS } from '../session/expiry.js';
import { ensureStateDir, forgetStateDir, writeState, type SessionState } from '../state/store.js';
import { pendingWork, sha256, snapshot, type SessionSnapshot, type WorkOptions } from './fresh.js';
import { install, reloadFor, type InstallDeps, type ReloadDeps } from './install.js';
import { obtain } from './obtain.js';
import { recordFailure } from './record.js';

export { INCLUDE_MODE } from './install.js';

/** The swappable I/O of a pass. */
export interface RefreshDeps extends InstallDeps, ReloadDeps {
  now: () => Date;
  /** The credential kind of a session (see credentials/factory.ts). */
  credentials: (session: AnySessionConfig) => CredentialKind;
  /**
   * Reads a session's state file and include under the lock; default: from disk. The daemon
   * serves them from its reader while their identity on disk is unchanged (see daemon/current.ts).
   */
  snapshot?: ((stateDir: string, session: AnySessionConfig) => Promise<SessionSnapshot>) | undefined;
}

/** The default I/O for a configuration. */
export function defaultDeps(config: Config, log: Logger = silentLogger): RefreshDeps {
  return {
    credentials: (s) => credentialKind(s),
    testConfig: config.nginx.test ? () => testNginxConfig(config.nginx) : async () => undefined,
    reloader: createReloader(config.nginx),
    now: () => new Date(),
    log,
  };
}

/** See WorkOptions: force, or log in unless another run already replaced generation N. */
export interface RefreshOptions extends WorkOptions {
  /**
   * Told the new `Name=value` cookie as soon as it passed the whitelist, before the include is
   * written, tested and nginx reloaded: the 401 fallback replays with it at once. The include is
   * written once what it returns has settled (the daemon lets those replays go first).
   */
  onCookie?: ((cookie: string, generation: number) => void | Promise<void>) | undefined;
  /** Try renewing the current cookie (`GET /_session`) before logging in with the password. */
  renew?: boolean | undefined;
  /** Return once the include is written and tested; the caller reloads with `reloadFor` (the daemon). */
  deferReload?: boolean | undefined;
  /** The cookie being replaced was refused by the backend: a rate-limited reload must not wait. */
  urgent?: boolean | undefined;
  /** The generation a new cookie takes (a fleet's, from its store); default: one above the local one. */
  generation?: number | undefined;
}

/** What a pass did. `exitCode` is 0, or 3 when nginx was not running to be reloaded. */
export interface RefreshOutcome {
  session: string;
  /**
   * noop: nothing done (fresh, or the backend confirmed the cookie unchanged); login / renewal: a
   * new cookie from a login or a renewal; reload: only a reload still owed; blank: expired cookie removed.
   */
  action: 'noop' | 'login' | 'renewal' | 'reload' | 'blank';
  reason?: string | undefined;
  generation: number;
  issued?: string | undefined;
  expires?: string | undefined;
  /** The include was rewritten. */
  wrote: boolean;
  /** A reload of `generation` is still owed: only with `deferReload`, for the caller to do. */
  reloadOwed: boolean;
  /** The cookie replaced was refused by the backend (the caller said so, or a renewal found it dead): reload without delay. */
  urgent?: boolean | undefined;
  /** nginx was asked to reload and accepted. */
  reloaded: boolean;
  warning?: string | undefined;
  exitCode: 0 | 3;
}

/** Runs one pass for `session` under its cross-process lock, then reloads. Throws a RefresherError on failure. */
export async function refreshSession(config: Config, session: AnySessionConfig, deps: RefreshDeps, options: RefreshOptions = {}): Promise<RefreshOutcome> {
  await ensureStateDir(config.state_dir);
  const log = deps.log.child({ session: session.name });
  const outcome = await withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, async () => {
    const snap = await (deps.snapshot ?? snapshot)(config.state_dir, session);
    try {
      return await pass(config, session, deps, snap, options, log);
    } catch (error) {
      if (error instanceof RefresherError) await recordFailure(config, session, error, deps.now());
      throw error;
    }
  }).catch((error: unknown) => {
    forgetStateDir(config.state_dir);
    throw error;
  });
  if (!outcome.reloadOwed || options.deferReload) return outcome;
  return { ...outcome, ...(await reloadOwed(config, session, deps, outcome.generation, outcome.urgent)), reloadOwed: false };
}

/** `reloadFor`, recording a failure in the state file (under the lock) before it is thrown. */
export async function reloadOwed(config: Config, session: AnySessionConfig, deps: RefreshDeps, generation: number, urgent = false): ReturnType<typeof reloadFor> {
  try {
    return await reloadFor(config, session, deps, generation, urgent);
  } catch (error) {
    if (error instanceof RefresherError) {
      await withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, () => recordFailure(config, session, error, deps.now())).catch(() => undefined);
    }
    throw error;
  }
}

async function pass(config: Config, session: AnySessionConfig, deps: RefreshDeps, snap: SessionSnapshot, options: RefreshOptions, log: Logger): Promise<RefreshOutcome> {
  if (snap.problem) throw snap.problem;
  const work = pendingWork(snap, deps.now(), options);
  const base = { session: session.name, generation: snap.state?.generation ?? 0, issued: snap.state?.issued, expires: snap.state?.expires, wrote: false, reloaded: false, exitCode: 0 as const };
  if (work === undefined) {
    log.debug('cookie is fresh; nothing to do');
    return { ...base, action: 'noop', reloadOwed: false };
  }
  if (work === 'reload-pending') {
    log.info('retrying a reload still owed from an earlier run');
    return { ...base, action: 'reload', reason: work, reloadOwed: true, urgent: options.urgent };
  }

  const previousText = snap.include?.toString('utf8');
  const kind = deps.credentials(session);
  // Only a credential we wrote and that is not known to be dead is worth renewing.
  const renewable = options.renew && kind.renew && (work === 'half-life' || work === 'requested') && previousText !== undefined ? parseIncludeCookie(previousText, session.variable) : undefined;
  log.info({ reason: work }, renewable ? 'renewing the session' : 'logging in');
  // Before the secret is read: a secret file changed after this is not in the credential (see passwordChanged).
  const asked = deps.now();
  const obtained = await obtain(kind, renewable, log);
  if (!obtained) {
    log.info('the backend confirmed the session and re-issued the same cookie; nothing to write');
    return { ...base, action: 'noop', reason: 'confirmed', reloadOwed: false };
  }
  const { value, expiry } = obtained.credential;
  if (expiry.clampedFrom !== undefined) {
    const claimed = Number.isFinite(expiry.clampedFrom) ? `${Math.round(expiry.clampedFrom)}s` : 'beyond the date range';
    log.warn({ expiry_source: expiry.source, claimed_seconds: Number.isFinite(expiry.clampedFrom) ? Math.round(expiry.clampedFrom) : null }, `${kind.label} claims to last ${claimed} (${expiry.source}); treated as ${MAX_LIFETIME_SECONDS}s (30 days), the longest believed`);
  }

  const includeGeneration = previousText === undefined ? undefined : parseIncludeGeneration(previousText, session.variable);
  const render = (generation: number) => renderCredentialInclude({ session: session.name, variable: session.variable, header: value, generation, issued: expiry.issued, expires: expiry.expires });
  // The same credential again (two logins within one second) renders the same bytes: no write, no reload.
  const unchanged = includeGeneration !== undefined && render(includeGeneration) === previousText;
  const generation = unchanged ? includeGeneration : (options.generation ?? Math.max(snap.state?.generation ?? 0, includeGeneration ?? 0) + 1);
  const text = render(generation);
  await options.onCookie?.(value, generation);

  if (!unchanged) {
    await install(session, text, snap.include, deps);
    log.info({ generation, expires: expiry.expires.toISOString(), expiry_source: expiry.source, obtained_by: obtained.by }, 'include written and accepted by nginx -t');
  }

  const now = deps.now().toISOString();
  const state: SessionState = {
    ...snap.state,
    generation,
    issued: expiry.issued.toISOString(),
    expires: expiry.expires.toISOString(),
    expiry_source: expiry.source,
    include_sha256: sha256(text),
    reload_pending: !unchanged || snap.state?.reload_pending === true,
    obtained_by: obtained.by,
    obtained_at: asked.toISOString(),
    ...(obtained.by === 'login' ? { last_login: now } : { last_renewal: now }),
    last: { result: 'ok', at: now },
  };
  await writeState(config.state_dir, session.name, state);
  const urgent = options.urgent === true || obtained.replacesDead === true;
  return { ...base, action: obtained.by, reason: work, generation, issued: state.issued, expires: state.expires, wrote: !unchanged, reloadOwed: state.reload_pending === true, urgent };
}
