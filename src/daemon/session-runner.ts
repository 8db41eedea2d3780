/**
 * Keeps one session fresh inside the daemon: refreshes it at start, then at about half its
 * remaining life (or on a cron schedule), retries failures with backoff while the cookie is
 * still valid, blanks the include when the cookie expires with no successful login, and serves
 * the 401 fallback with one shared refresh (single-flight inside, the cross-process lock outside).
 */
import { CronJob } from 'cron';
import type { Config, SessionConfig } from '../config/schema.js';
import { RefresherError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseIncludeCookie } from '../render/include.js';
import { snapshot, type WorkOptions } from '../refresh/fresh.js';
import { blankExpiredSession, refreshSession, reinstallInclude, type RefreshDeps, type RefreshOptions, type RefreshOutcome } from '../refresh/pipeline.js';
import { loginResult, type Metrics, type Trigger } from './metrics.js';
import { nextRefreshDelay, retryDelay, type Random } from './timing.js';

/** The session as nginx should be using it now. */
export interface CurrentSession {
  generation: number;
  /** `AuthSession=...`, or undefined when the include holds no cookie. */
  cookie: string | undefined;
  /** Epoch ms, or undefined with no cookie. */
  expiresAt: number | undefined;
  /** A cookie is present, not expired, and the include on disk is the one last written. */
  valid: boolean;
}

export type RefreshResult = { ok: true; outcome: RefreshOutcome } | { ok: false; error: RefresherError };

/** What the fallback gets: a cookie to replay with, or why there is none and when to retry. */
export type ReplayCookie =
  | { ok: true; cookie: string; generation: number; refreshed: boolean }
  | { ok: false; retryAfter: number; code: string; reason: string };

export interface RunnerContext {
  config: Config;
  session: SessionConfig;
  deps: RefreshDeps;
  metrics: Metrics;
  log: Logger;
  random: Random;
  /** Confirms nginx serves `generation` (verified reload); resolves false on timeout. */
  verify?: ((generation: number) => Promise<boolean>) | undefined;
}

/** setTimeout fires at once beyond 2^31-1 ms; longer waits are re-evaluated when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const LOGIN_ERRORS = new Set(['ERR_CREDENTIALS_REJECTED', 'ERR_BACKEND_UNAVAILABLE', 'ERR_COOKIE_REFUSED', 'ERR_PROTOCOL', 'ERR_CONFIG']);

export class SessionRunner {
  readonly name: string;
  private inflight: Promise<RefreshResult> | undefined;
  /** Resolves with the new cookie as soon as the in-flight refresh has it (undefined if none comes). */
  private inflightCookie: Promise<{ cookie: string; generation: number } | undefined> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private cron: CronJob | undefined;
  private failures = 0;
  private nextAttemptAt = 0;
  private lastError: RefresherError | undefined;
  private lastGoodInclude: Buffer | undefined;
  private expiresAt: number | undefined;
  private stopped = false;

  constructor(private readonly ctx: RunnerContext) {
    this.name = ctx.session.name;
  }

  /** Refreshes if needed, then keeps refreshing on schedule until `stop()`. */
  async start(): Promise<RefreshResult> {
    const { session } = this.ctx;
    if (session.schedule) {
      this.cron = CronJob.from({ cronTime: session.schedule, onTick: () => void this.scheduledRefresh(), start: true });
    }
    return this.refresh('start', {});
  }

  /** Stops timers and waits for a refresh in flight (which releases the lock). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.expiryTimer);
    await this.cron?.stop();
    await this.inflight;
  }

  /** The last refresh error, while the session has not recovered from it. */
  get error(): RefresherError | undefined {
    return this.lastError;
  }

  /** Epoch ms of the current cookie's expiry, as last seen. */
  get expiry(): number | undefined {
    return this.expiresAt;
  }

  /** Reads the include and state as they are on disk now. */
  async current(): Promise<CurrentSession> {
    const { config, session } = this.ctx;
    const snap = await snapshot(config.state_dir, session);
    const state = snap.state;
    const text = snap.include?.toString('utf8');
    const cookie = text === undefined ? undefined : parseIncludeCookie(text, session.variable);
    const expiresAt = state?.expires ? Date.parse(state.expires) : undefined;
    const intact = snap.includeSha256 !== undefined && snap.includeSha256 === state?.include_sha256;
    if (intact) this.lastGoodInclude = snap.include;
    this.expiresAt = expiresAt;
    const valid = intact && cookie !== undefined && expiresAt !== undefined && expiresAt > Date.now();
    return { generation: state?.generation ?? 0, cookie, expiresAt, valid };
  }

  /** One refresh pass shared by every concurrent caller. */
  refresh(trigger: Trigger, options: WorkOptions): Promise<RefreshResult> {
    if (!this.inflight) {
      let early: (value: { cookie: string; generation: number } | undefined) => void = () => undefined;
      this.inflightCookie = new Promise((resolve) => (early = resolve));
      const onCookie = (cookie: string, generation: number) => early({ cookie, generation });
      this.inflight = this.run(trigger, { ...options, onCookie }).finally(() => {
        early(undefined);
        this.inflight = undefined;
        this.inflightCookie = undefined;
      });
    }
    return this.inflight;
  }

  /** For the fallback: the cookie to replay a request that failed with `failedGeneration`. */
  async cookieForReplay(failedGeneration: number | undefined): Promise<ReplayCookie> {
    let current = await this.current();
    if (current.valid && current.cookie && failedGeneration !== undefined && current.generation > failedGeneration) {
      return { ok: true, cookie: current.cookie, generation: current.generation, refreshed: false };
    }
    const wait = this.nextAttemptAt - Date.now();
    if (wait > 0 && this.lastError) return { ok: false, retryAfter: Math.ceil(wait / 1000), code: this.lastError.code, reason: this.lastError.message };
    const refreshing = this.refresh('fallback', { ifGenerationAtMost: failedGeneration ?? current.generation, minInterval: this.ctx.config.daemon.min_refresh_interval });
    // Replay as soon as the login has produced a cookie; writing, nginx -t and the reload go on
    // behind it (a cookie that nginx later refuses to load is still valid at the backend).
    const early = await Promise.race([this.inflightCookie, refreshing.then(() => undefined)]);
    if (early) return { ok: true, cookie: early.cookie, generation: early.generation, refreshed: true };
    const result = await refreshing;
    if (!result.ok) return { ok: false, retryAfter: Math.max(1, Math.ceil((this.nextAttemptAt - Date.now()) / 1000)), code: result.error.code, reason: result.error.message };
    current = await this.current();
    if (!current.cookie) return { ok: false, retryAfter: 1, code: 'ERR_NO_SESSION', reason: 'no session cookie is available' };
    return { ok: true, cookie: current.cookie, generation: current.generation, refreshed: result.outcome.action === 'login' };
  }

  /** Called when the password file changed: log in with the new password now. */
  passwordChanged(): Promise<RefreshResult> {
    this.nextAttemptAt = 0;
    return this.refresh('watch', { force: true });
  }

  /** Called when the include changed on disk: put ours back if someone else edited it. */
  async includeChanged(): Promise<void> {
    if (this.inflight) await this.inflight;
    const current = await this.current();
    if (current.valid || this.stopped) return;
    const restored = this.lastGoodInclude ? await reinstallInclude(this.ctx.config, this.ctx.session, this.ctx.deps, this.lastGoodInclude).catch(() => false) : false;
    if (!restored) await this.refresh('watch', {});
  }

  private async scheduledRefresh(): Promise<void> {
    const current = await this.current();
    await this.refresh('schedule', { ifGenerationAtMost: current.generation });
  }

  private async run(trigger: Trigger, options: RefreshOptions): Promise<RefreshResult> {
    const { config, session, deps, metrics, log } = this.ctx;
    metrics.refreshes.inc({ session: this.name, trigger });
    let result: RefreshResult;
    try {
      const outcome = await refreshSession(config, session, deps, options);
      if (outcome.action === 'login') metrics.logins.inc({ session: this.name, result: 'ok' });
      if (outcome.reloaded) {
        metrics.reloads.inc({ result: 'ok' });
        if (this.ctx.verify && !(await this.ctx.verify(outcome.generation))) metrics.reloads.inc({ result: 'unverified' });
      } else if (outcome.warning) metrics.reloads.inc({ result: 'not_running' });
      metrics.generation.set({ session: this.name }, outcome.generation);
      this.failures = 0;
      this.nextAttemptAt = 0;
      this.lastError = undefined;
      result = { ok: true, outcome };
    } catch (error) {
      if (!(error instanceof RefresherError)) throw error;
      if (LOGIN_ERRORS.has(error.code)) metrics.logins.inc({ session: this.name, result: loginResult(error.code) });
      if (error.code === 'ERR_RELOAD_FAILED') metrics.reloads.inc({ result: 'failed' });
      this.failures++;
      this.lastError = error;
      const delay = retryDelay(this.failures, config.daemon.retry_min * 1000, config.daemon.retry_max * 1000, this.ctx.random);
      this.nextAttemptAt = Date.now() + delay;
      log.error({ trigger, code: error.code, attempt: this.failures, retry_in_ms: delay }, error.message);
      result = { ok: false, error };
    }
    if (!this.stopped) await this.reschedule(result);
    return result;
  }

  /** Sets the next refresh (and the expiry watch) from what is on disk now. */
  private async reschedule(result: RefreshResult): Promise<void> {
    clearTimeout(this.timer);
    clearTimeout(this.expiryTimer);
    const current = await this.current();
    const now = Date.now();
    const { session } = this.ctx;
    let delay: number | undefined;
    if (!result.ok) delay = Math.max(0, this.nextAttemptAt - now);
    else if (!(session.schedule && session.schedule_only) && current.expiresAt !== undefined) delay = nextRefreshDelay(current.expiresAt, now, this.ctx.random);
    if (delay !== undefined) this.timer = setTimeout(() => void this.scheduledRefresh(), Math.min(delay, MAX_TIMER_MS));
    if (current.expiresAt !== undefined && current.cookie) {
      // An expired cookie is never served: blank the include when it runs out with no new login.
      this.expiryTimer = setTimeout(() => void this.expire(), Math.min(Math.max(0, current.expiresAt - now), MAX_TIMER_MS));
    }
  }

  private async expire(): Promise<void> {
    if (this.stopped) return;
    if (this.inflight) await this.inflight;
    const current = await this.current();
    if (current.valid || !current.cookie) return;
    try {
      await blankExpiredSession(this.ctx.config, this.ctx.session, this.ctx.deps);
    } catch (error) {
      this.ctx.log.error({ err: error }, 'could not blank the expired session');
    }
    await this.current();
  }
}
