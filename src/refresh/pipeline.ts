/**
 * One refresh pass for one session: lock -> (fresh? done) -> login -> render -> write -> nginx -t
 * (restore the previous include on failure) -> state -> reload.
 *
 * Whatever fails, the include on disk is either untouched or restored byte for byte, and the
 * failure is recorded in the state file. The I/O steps are passed in (`RefreshDeps`) so the
 * daemon can share them and tests can observe them.
 */
import type { Config, SessionConfig } from '../config/schema.js';
import { NginxNotRunningError, NginxTestError, RefresherError } from '../errors.js';
import { withSessionLock } from '../lock.js';
import { silentLogger, type Logger } from '../log.js';
import { testNginxConfig } from '../nginx/test-config.js';
import { createReloader, type Reloader } from '../nginx/reload.js';
import { resolveGroup } from '../render/group.js';
import { parseIncludeGeneration, renderEmptyInclude, renderInclude } from '../render/include.js';
import { removeIfExists, writeAtomic } from '../render/write.js';
import { pickSessionCookie } from '../session/cookie.js';
import { MAX_LIFETIME_SECONDS, computeExpiry } from '../session/expiry.js';
import { login, type LoginResponse } from '../session/login.js';
import { readPassword } from '../session/password.js';
import { ensureStateDir, readState, writeState, type SessionState } from '../state/store.js';
import { pendingWork, sha256, snapshot, type SessionSnapshot, type WorkOptions } from './fresh.js';

/** Mode of the include: readable by its group (nginx), by nobody else. */
export const INCLUDE_MODE = 0o640;

/** The swappable I/O of a pass. */
export interface RefreshDeps {
  login: (session: SessionConfig, password: string) => Promise<LoginResponse>;
  readPassword: (session: SessionConfig) => Promise<string>;
  testConfig: () => Promise<void>;
  reloader: Reloader;
  now: () => Date;
  log: Logger;
}

/** The default I/O for a configuration. */
export function defaultDeps(config: Config, log: Logger = silentLogger): RefreshDeps {
  return {
    login,
    readPassword: (s) => readPassword(s),
    testConfig: config.nginx.test ? () => testNginxConfig(config.nginx) : async () => undefined,
    reloader: createReloader(config.nginx),
    now: () => new Date(),
    log,
  };
}

/** See WorkOptions: force, or log in unless another run already replaced generation N. */
export interface RefreshOptions extends WorkOptions {
  /**
   * Told the new `Name=value` cookie as soon as the login returned it and it passed the
   * whitelist, before the include is written, tested and nginx reloaded: the 401 fallback
   * replays with it at once instead of waiting for nginx.
   */
  onCookie?: ((cookie: string, generation: number) => void) | undefined;
}

/** What a pass did. `exitCode` is 0, or 3 when nginx was not running to be reloaded. */
export interface RefreshOutcome {
  session: string;
  /** noop: fresh, nothing done; login: logged in; reload: only a reload still owed; blank: expired cookie removed. */
  action: 'noop' | 'login' | 'reload' | 'blank';
  reason?: string | undefined;
  generation: number;
  issued?: string | undefined;
  expires?: string | undefined;
  /** The include was rewritten. */
  wrote: boolean;
  /** nginx was asked to reload and accepted. */
  reloaded: boolean;
  warning?: string | undefined;
  exitCode: 0 | 3;
}

/** Runs one pass for `session` under its cross-process lock. Throws a RefresherError on failure. */
export async function refreshSession(config: Config, session: SessionConfig, deps: RefreshDeps, options: RefreshOptions = {}): Promise<RefreshOutcome> {
  await ensureStateDir(config.state_dir);
  const log = deps.log.child({ session: session.name });
  return withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, async () => {
    const snap = await snapshot(config.state_dir, session);
    try {
      return await pass(config, session, deps, snap, options, log);
    } catch (error) {
      if (error instanceof RefresherError) await recordFailure(config, session, error, deps.now());
      throw error;
    }
  });
}

async function pass(config: Config, session: SessionConfig, deps: RefreshDeps, snap: SessionSnapshot, options: RefreshOptions, log: Logger): Promise<RefreshOutcome> {
  if (snap.problem) throw snap.problem;
  const work = pendingWork(snap, deps.now(), options);
  const base = { session: session.name, generation: snap.state?.generation ?? 0, issued: snap.state?.issued, expires: snap.state?.expires };
  if (work === undefined) {
    log.debug('cookie is fresh; nothing to do');
    return { ...base, action: 'noop', wrote: false, reloaded: false, exitCode: 0 };
  }
  if (work === 'reload-pending') {
    log.info('retrying a reload still owed from an earlier run');
    const state: SessionState = { ...snap.state!, last: { result: 'ok', at: deps.now().toISOString() } };
    return { ...base, action: 'reload', reason: work, wrote: false, ...(await reloadAndRecord(config, session, deps, state)) };
  }

  log.info({ reason: work }, 'logging in');
  const password = await deps.readPassword(session);
  const response = await deps.login(session, password);
  const cookie = pickSessionCookie(response.setCookie, session.cookie_name);
  const expiry = computeExpiry({ cookie, username: session.username, lifetime: session.lifetime, now: response.receivedAt, serverDate: response.serverDate, cookieName: session.cookie_name });
  if (expiry.clampedFrom !== undefined) {
    const claimed = Number.isFinite(expiry.clampedFrom) ? `${Math.round(expiry.clampedFrom)}s` : 'beyond the date range';
    log.warn({ expiry_source: expiry.source, claimed_seconds: Number.isFinite(expiry.clampedFrom) ? Math.round(expiry.clampedFrom) : null }, `the backend's ${session.cookie_name} cookie claims to last ${claimed} (${expiry.source}); treated as ${MAX_LIFETIME_SECONDS}s (30 days), the longest believed`);
  }

  const previousText = snap.include?.toString('utf8');
  const includeGeneration = previousText === undefined ? undefined : parseIncludeGeneration(previousText, session.variable);
  const render = (generation: number) =>
    renderInclude({ session: session.name, variable: session.variable, cookieName: session.cookie_name, value: cookie.value, generation, issued: expiry.issued, expires: expiry.expires });
  // The same cookie again (two logins within one second) renders the same bytes: no write, no reload.
  const unchanged = includeGeneration !== undefined && render(includeGeneration) === previousText;
  const generation = unchanged ? includeGeneration : Math.max(snap.state?.generation ?? 0, includeGeneration ?? 0) + 1;
  const text = render(generation);
  options.onCookie?.(`${session.cookie_name}=${cookie.value}`, generation);

  if (!unchanged) {
    await install(session, text, snap.include, deps);
    log.info({ generation, expires: expiry.expires.toISOString(), expiry_source: expiry.source }, 'include written and accepted by nginx -t');
  }

  const now = deps.now().toISOString();
  const state: SessionState = {
    generation,
    issued: expiry.issued.toISOString(),
    expires: expiry.expires.toISOString(),
    expiry_source: expiry.source,
    include_sha256: sha256(text),
    reload_pending: !unchanged || snap.state?.reload_pending === true,
    last_login: now,
    last: { result: 'ok', at: now },
  };
  const reload = await reloadAndRecord(config, session, deps, state);
  return { session: session.name, action: 'login', reason: work, generation, issued: state.issued, expires: state.expires, wrote: !unchanged, ...reload };
}

/** Reloads when one is owed, then writes the state saying whether it still is. */
async function reloadAndRecord(config: Config, session: SessionConfig, deps: RefreshDeps, state: SessionState): Promise<Pick<RefreshOutcome, 'reloaded' | 'warning' | 'exitCode'>> {
  if (!state.reload_pending) {
    await writeState(config.state_dir, session.name, state);
    return { reloaded: false, exitCode: 0 };
  }
  try {
    await deps.reloader.reload();
  } catch (error) {
    if (error instanceof NginxNotRunningError) {
      // nginx reads the include when it starts, so no reload is owed.
      await writeState(config.state_dir, session.name, { ...state, reload_pending: false });
      return { reloaded: false, warning: `${error.message}; the include is written and nginx will read it when it starts`, exitCode: 3 };
    }
    await writeState(config.state_dir, session.name, state);
    throw error;
  }
  await writeState(config.state_dir, session.name, { ...state, reload_pending: false });
  deps.log.child({ session: session.name }).info({ generation: state.generation, via: deps.reloader.description }, 'nginx reloaded');
  return { reloaded: true, exitCode: 0 };
}

/**
 * Writes `text` as the include and has nginx test it; when nginx refuses, puts `previous` back
 * byte for byte (or removes the new file when there was none) and throws NginxTestError.
 */
async function install(session: SessionConfig, text: string, previous: Buffer | undefined, deps: RefreshDeps): Promise<void> {
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

/**
 * Called by the daemon when the cookie has expired and no login succeeded: an expired cookie is
 * never served, so the include falls back to an empty value (a new generation) and nginx is
 * reloaded. Does nothing when a valid cookie appeared meanwhile or the include is already empty.
 */
export async function blankExpiredSession(config: Config, session: SessionConfig, deps: RefreshDeps): Promise<RefreshOutcome> {
  await ensureStateDir(config.state_dir);
  return withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, async () => {
    const snap = await snapshot(config.state_dir, session);
    if (snap.problem) throw snap.problem;
    const state = snap.state ?? { generation: 0 };
    const generation = Math.max(state.generation, parseIncludeGeneration(snap.include?.toString('utf8') ?? '', session.variable) ?? 0);
    const base = { session: session.name, generation, issued: state.issued, expires: state.expires, wrote: false };
    const intact = snap.includeSha256 !== undefined && snap.includeSha256 === state.include_sha256;
    const valid = state.expires !== undefined && Date.parse(state.expires) > deps.now().getTime();
    if (intact && (valid || state.expires === undefined)) return { ...base, action: 'noop', reloaded: false, exitCode: 0 };
    const text = renderEmptyInclude(session.name, session.variable, generation + 1);
    await install(session, text, snap.include, deps);
    deps.log.child({ session: session.name }).warn({ generation: generation + 1 }, 'cookie expired with no successful login: include set to an empty value');
    const next: SessionState = { ...state, generation: generation + 1, issued: undefined, expires: undefined, expiry_source: undefined, include_sha256: sha256(text), reload_pending: true };
    const reload = await reloadAndRecord(config, session, deps, next);
    return { session: session.name, action: 'blank', reason: 'expired', generation: generation + 1, wrote: true, ...reload };
  });
}

/**
 * Puts `text` (an include this process saw match the state file) back after someone edited or
 * deleted it, without a new login. Returns false, doing nothing, when the state has moved on to
 * another include meanwhile (the caller should refresh instead).
 */
export async function reinstallInclude(config: Config, session: SessionConfig, deps: RefreshDeps, text: Buffer): Promise<boolean> {
  return withSessionLock(config.state_dir, session.name, config.lock_timeout * 1000, async () => {
    const snap = await snapshot(config.state_dir, session);
    if (snap.problem) throw snap.problem;
    const wanted = sha256(text);
    if (snap.state?.include_sha256 !== wanted) return false;
    if (snap.includeSha256 === wanted) return true;
    await install(session, text.toString('utf8'), snap.include, deps);
    deps.log.child({ session: session.name }).warn({ generation: snap.state.generation }, 'include was changed or removed by hand: restored');
    await reloadAndRecord(config, session, deps, { ...snap.state, reload_pending: true });
    return true;
  });
}

/** Puts the previous include back byte for byte, or removes a first include that had no predecessor. */
async function restore(path: string, previous: Buffer | undefined, gid: number | undefined): Promise<void> {
  if (previous === undefined) await removeIfExists(path);
  else await writeAtomic(path, previous, { mode: INCLUDE_MODE, gid });
}

async function recordFailure(config: Config, session: SessionConfig, error: RefresherError, now: Date): Promise<void> {
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
