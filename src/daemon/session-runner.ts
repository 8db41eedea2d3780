/**
 * Keeps one session fresh inside the daemon: refreshes it at start, then at about half its
 * remaining life (or on a cron schedule), renewing before logging in; checks every
 * `probe_interval` that the backend still knows the cookie; retries failures with backoff while
 * the cookie is still valid; blanks the include when the cookie expires with no replacement; and
 * answers the 401 fallback by asking the backend (see verdicts.ts) with one shared refresh
 * (single-flight inside, the cross-process lock outside). Reloads run behind the pass, so no
 * reload wait holds the lock or the single-flight.
 */
import type { CronJob } from 'cron';
import { stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { AnySessionConfig, Config } from '../config/schema.js';
import type { FleetStatus } from '../fleet/coordinator.js';
import type { FleetHook } from '../fleet/session-fleet.js';
import type { CredentialKind } from '../credentials/kind.js';
import { sessionSecret } from '../credentials/secret.js';
import { RefresherError, SessionLoopError } from '../errors.js';
import type { Logger } from '../log.js';
import { refreshSession, reloadOwed, type RefreshDeps, type RefreshOptions, type RefreshOutcome } from '../refresh/pipeline.js';
import { recordAlert } from '../refresh/record.js';
import { blankExpiredSession, reinstallInclude } from '../refresh/repair.js';
import { Background } from './background.js';
import { EarlyReplays } from './early-replays.js';
import { CurrentReader, type CurrentSession } from './current.js';
import { loginResult, type Metrics, type Trigger } from './metrics.js';
import { loginGate, onRejected } from './replay-policy.js';
import { nextRefreshDelay, retryDelay, type Random } from './timing.js';
import { Verdicts, type Subject } from './verdicts.js';

export type { CurrentSession };

export type RefreshResult = { ok: true; outcome: RefreshOutcome } | { ok: false; error: RefresherError };

/**
 * What the fallback gets: a cookie to replay with and why (`stale`: nginx sent an older
 * generation; `authorization`: the backend confirmed the session, so its 401 was about the
 * request; `refreshed`: a new cookie), or why there is none and when to retry.
 */
export type ReplayCookie =
  | {
      ok: true;
      cookie: string;
      generation: number;
      verdict: 'stale' | 'authorization' | 'refreshed';
      /** To be called when the replay with this cookie is over: it was handed out before its include was written. */
      done?: (() => void) | undefined;
    }
  | { ok: false; retryAfter: number; code: string; reason: string };

export interface RunnerContext {
  config: Config;
  session: AnySessionConfig;
  deps: RefreshDeps;
  metrics: Metrics;
  log: Logger;
  random: Random;
  /** Confirms nginx serves `generation` (verified reload); resolves false on timeout. */
  verify?: ((generation: number) => Promise<boolean>) | undefined;
  /** With `cluster:`: passes go through the fleet (one login for all nodes); absent: this node works alone. */
  fleet?: FleetHook | undefined;
}

/** setTimeout fires at once beyond 2^31-1 ms; longer waits are re-evaluated when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Probes of a cookie right after its login (see verifyNewCookie). */
const VERIFY_PROBES = 5;
/**
 * 401s on one generation cost at most one probe per this many ms: a client hammering a path the
 * account may not read waits up to this long for its 401, and costs the backend 4 HMAC checks a
 * second. A 401 is only answered by a probe sent after it arrived (see verdicts.ts).
 */
const PROBE_SPACING_MS = 250;

/** The longest the include waits for the replays that carry its credential first (see early-replays.ts). */
const REPLAY_HEAD_START_MS = 50;

/** The longest a rejected request is held for the login floor; past it, 503 with Retry-After. */
const MAX_HOLD_MS = 5000;

const LOGIN_ERRORS = new Set(['ERR_CREDENTIALS_REJECTED', 'ERR_BACKEND_UNAVAILABLE', 'ERR_COOKIE_REFUSED', 'ERR_PROTOCOL', 'ERR_CONFIG']);

export class SessionRunner {
  readonly name: string;
  private inflight: Promise<RefreshResult> | undefined;
  /** When the pass in flight began (a cookie it brings may predate a failure seen after that). */
  private inflightStartedAt = 0;
  /** Resolves with the new cookie as soon as the in-flight refresh has it (undefined if none comes). */
  private inflightCookie: Promise<{ cookie: string; generation: number } | undefined> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private cron: CronJob | undefined;
  private failures = 0;
  private nextAttemptAt = 0;
  private lastError: RefresherError | undefined;
  private loopReported = -1;
  /** The last generation this runner obtained to replace a cookie the backend refused. */
  private replacedRefused = -1;
  private lastGoodInclude: Buffer | undefined;
  private seen: { generation: number; expiresAt: number | undefined } = { generation: 0, expiresAt: undefined };
  private stopped = false;
  private readonly reader: CurrentReader;
  private readonly verdicts: Verdicts;
  private readonly background: Background;
  /** Replays under way with a credential whose include is not written yet. */
  private readonly earlyReplays = new EarlyReplays();
  /** The session's credential kind: what the backend is asked, and the header replays carry. */
  private readonly kind: CredentialKind;
  /** ctx.deps, with this session's state and include read through the reader. */
  private readonly deps: RefreshDeps;

  constructor(private readonly ctx: RunnerContext) {
    this.name = ctx.session.name;
    this.background = new Background(ctx.log);
    this.reader = new CurrentReader(ctx.config.state_dir, ctx.session);
    this.deps = { ...ctx.deps, snapshot: () => this.reader.snapshot() };
    this.kind = ctx.deps.credentials(ctx.session);
    const probe = this.kind.probe;
    this.verdicts = new Verdicts({
      probe: probe ?? (async () => ({ state: 'unknown', reason: `${this.kind.kind} has no probe (set probe_path to give it one)` })),
      spacingMs: Math.min(this.floorMs, PROBE_SPACING_MS),
      noun: this.kind.header === 'cookie' ? 'cookie' : 'credential',
    });
  }

  /** The request header the credential travels in (replays carry it there). */
  get header(): CredentialKind['header'] {
    return this.kind.header;
  }

  /** At most one login per this many ms when cookies keep failing (`daemon.min_refresh_interval`). */
  private get floorMs(): number {
    return this.ctx.config.daemon.min_refresh_interval * 1000;
  }

  /** Refreshes if needed, then keeps refreshing on schedule until `stop()`. */
  async start(): Promise<RefreshResult> {
    const { session, config } = this.ctx;
    if (session.schedule) {
      // Loaded only for a schedule: cron brings a date library of its own, megabytes of heap.
      // cron is CommonJS: its exports are the default export's properties, bundled or not.
      const { CronJob } = (await import('cron')).default;
      if (!this.stopped) this.cron = CronJob.from({ cronTime: session.schedule, onTick: () => void this.scheduledRefresh(), start: true });
    }
    if (config.daemon.probe_interval > 0 && this.kind.probe) this.probeTimer = setInterval(() => void this.checkValidity(), config.daemon.probe_interval * 1000);
    await this.ctx.fleet?.start({ current: () => this.current(), reload: (generation) => this.reloadBehind(generation, true), installing: (work) => this.whileInstalling(work) });
    return this.refresh('start', { renew: true });
  }

  /** Stops timers and waits for a refresh and reloads in flight (which release the lock). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.ctx.fleet?.stop();
    clearTimeout(this.timer);
    clearTimeout(this.expiryTimer);
    clearInterval(this.probeTimer);
    await this.cron?.stop();
    await this.inflight;
    await this.background.drain();
  }

  /** The last refresh error while the session has not recovered from it, or the loop guard's. */
  get error(): RefresherError | undefined {
    const loop = this.verdicts.loop();
    return this.lastError ?? (loop ? new SessionLoopError(loop.message) : undefined);
  }

  /** The loop guard is raised: the backend refuses cookies it has just issued. */
  get looping(): boolean {
    return this.verdicts.loop() !== undefined;
  }

  /** The cluster state (connected, leader, lag), or undefined without `cluster:`. */
  get fleet(): FleetStatus | undefined {
    return this.ctx.fleet?.status();
  }

  /** Epoch ms of the current cookie's expiry, and the generation, as last read from disk. */
  get view(): { generation: number; expiresAt: number | undefined } {
    return this.seen;
  }

  /** Reads the include and state as they are on disk now. */
  async current(): Promise<CurrentSession> {
    const current = await this.reader.read();
    if (current.intactInclude) this.lastGoodInclude = current.intactInclude;
    this.seen = { generation: current.generation, expiresAt: current.expiresAt };
    return current;
  }

  /** One refresh pass shared by every concurrent caller. */
  refresh(trigger: Trigger, options: RefreshOptions): Promise<RefreshResult> {
    if (!this.inflight) {
      this.inflightStartedAt = Date.now();
      let early: (value: { cookie: string; generation: number } | undefined) => void = () => undefined;
      this.inflightCookie = new Promise((resolve) => (early = resolve));
      const onCookie = (cookie: string, generation: number) => {
        early({ cookie, generation });
        return this.earlyReplays.settled(REPLAY_HEAD_START_MS);
      };
      this.inflight = this.run(trigger, { ...options, onCookie }).finally(() => {
        early(undefined);
        this.inflight = undefined;
        this.inflightCookie = undefined;
      });
    }
    return this.inflight;
  }

  /** For the fallback: the cookie to replay a request that failed with `failedGeneration`. */
  async cookieForReplay(failedGeneration: number | undefined, challenge?: string): Promise<ReplayCookie> {
    const receivedAt = Date.now();
    const current = await this.current();
    const backoffLeftMs = this.lastError ? this.nextAttemptAt - Date.now() : 0;
    const valid = current.valid && current.cookie !== undefined;
    switch (onRejected({ failedGeneration, generation: current.generation, valid, currentPostdatesFailure: current.generation === this.replacedRefused, backoffLeftMs, looping: this.looping })) {
      case 'stale':
        return { ok: true, cookie: current.cookie!, generation: current.generation, verdict: 'stale' };
      case 'backoff':
        return { ok: false, retryAfter: Math.ceil(backoffLeftMs / 1000), code: this.lastError!.code, reason: this.lastError!.message };
      case 'probe': {
        const verdict = await this.verdicts.onUnauthorized(subject(current, current.cookie!), this.kind.challenge(challenge), receivedAt);
        if (!verdict.shared) this.ctx.metrics.probes.inc({ session: this.name, trigger: 'unauthorized', result: verdict.state });
        if (verdict.state === 'alive') {
          // The current cookie is alive: a 401 on it was about the request; one on an older cookie was not.
          const stale = failedGeneration !== undefined && failedGeneration < current.generation;
          return { ok: true, cookie: current.cookie!, generation: current.generation, verdict: stale ? 'stale' : 'authorization' };
        }
        if (!verdict.shared) this.ctx.log.warn({ generation: current.generation, verdict: verdict.state, reason: verdict.reason }, 'a 401 on the current cookie: replacing it');
        break;
      }
      case 'replace':
        break;
    }
    return this.replace(current, failedGeneration ?? current.generation, receivedAt);
  }

  /**
   * For a replay that itself got 401 with the cookie of `generation` (it died on its way, say
   * the backend rotated its secret again): a cookie to send the request once more with, or
   * undefined when the backend says that cookie is alive (the 401 is about the request) or no
   * cookie can be had now. Asks the same questions as the first 401, so it costs no extra login.
   */
  async cookieAfterReplay401(generation: number, challenge?: string): Promise<string | undefined> {
    // An early cookie's pass may still be writing it: decide once it is on disk.
    if (this.inflight) await this.inflight;
    const again = await this.cookieForReplay(generation, challenge);
    return again.ok && again.verdict !== 'authorization' && again.generation !== generation ? again.cookie : undefined;
  }

  /**
   * A new cookie for a session whose cookie failed: logs in at once, or holds the request until
   * the login floor has passed, or answers 503 (loop guard raised, or a floor too far off).
   * Replays as soon as the login has produced a cookie: writing, nginx -t and the reload go on
   * behind it (a cookie nginx later refuses is still valid at the backend).
   */
  private async replace(current: CurrentSession, failedGeneration: number, receivedAt: number): Promise<ReplayCookie> {
    if (this.inflight && this.inflightStartedAt < receivedAt) {
      // A pass that began before this 401 (a scheduled renewal, say) may bring a cookie issued
      // before whatever killed the old one: use it only if the backend still knows it. One that
      // replaced a refused cookie was obtained after the refusal: nothing to ask (a kind without
      // a probe could only answer `unknown`, and each such 401 would buy one more credential).
      await this.inflight;
      const after = await this.current();
      if (after.generation > current.generation && after.valid && after.cookie) {
        if (after.generation === this.replacedRefused) return { ok: true, cookie: after.cookie, generation: after.generation, verdict: 'refreshed' };
        const verdict = await this.verdicts.check(subject(after, after.cookie), receivedAt);
        if (verdict.state === 'alive') return { ok: true, cookie: after.cookie, generation: after.generation, verdict: 'refreshed' };
        current = after;
        failedGeneration = after.generation;
      }
    }
    const loop = this.verdicts.loop();
    const gate = loginGate({ floorLeftMs: (current.lastLoginAt ?? 0) + this.floorMs - Date.now(), refreshing: this.inflight !== undefined, loop, maxHoldMs: MAX_HOLD_MS });
    if (loop && gate.kind === 'refuse') this.reportLoop(current.generation, loop.message);
    if (gate.kind === 'refuse') {
      const reason = loop?.message ?? `the last login was less than daemon.min_refresh_interval (${this.ctx.config.daemon.min_refresh_interval}s) ago`;
      return { ok: false, retryAfter: gate.retryAfter, code: gate.code, reason };
    }
    if (gate.kind === 'hold') await delay(gate.ms);
    const refreshing = this.refresh('fallback', { ifGenerationAtMost: failedGeneration, urgent: true });
    const early = await Promise.race([this.inflightCookie, refreshing.then(() => undefined)]);
    if (early) return { ok: true, cookie: early.cookie, generation: early.generation, verdict: 'refreshed', done: this.earlyReplays.start() };
    const result = await refreshing;
    if (!result.ok) return { ok: false, retryAfter: Math.max(1, Math.ceil((this.nextAttemptAt - Date.now()) / 1000)), code: result.error.code, reason: result.error.message };
    const now = await this.current();
    if (!now.cookie) return { ok: false, retryAfter: 1, code: 'ERR_NO_SESSION', reason: 'no session cookie is available' };
    return { ok: true, cookie: now.cookie, generation: now.generation, verdict: 'refreshed' };
  }

  /** The loop guard's line, once per refused generation, in the log and the state file (`status`). */
  private reportLoop(generation: number, message: string): void {
    if (this.loopReported === generation) return;
    this.loopReported = generation;
    this.ctx.log.error({ code: 'ERR_SESSION_LOOP', generation }, `${message} Logins are held to one per ${this.ctx.config.daemon.min_refresh_interval}s; clients get 503 with Retry-After meanwhile`);
    const { config, session, deps } = this.ctx;
    this.background.track(recordAlert(config, session, new SessionLoopError(message), deps.now()));
  }

  /**
   * A cookie from a login is probed a few times at once, each on a new connection: behind a
   * balancer over nodes that do not share the secret, one of them refuses it, which a rotation
   * almost never does within milliseconds of a login. Feeds the loop guard.
   */
  private async verifyNewCookie(generation: number): Promise<void> {
    const probe = this.kind.probe;
    if (!probe) return;
    const current = await this.current();
    if (current.generation !== generation || !current.cookie) return;
    for (let i = 0; i < VERIFY_PROBES && !this.stopped; i++) {
      const answer = await probe(current.cookie);
      this.ctx.metrics.probes.inc({ session: this.name, trigger: 'verify', result: answer.state });
      if (answer.state === 'dead') return this.verdicts.verified(subject(current, current.cookie), false);
    }
    this.verdicts.verified(subject(current, current.cookie), true);
  }

  /** The periodic validity probe: a dead session is replaced before a client meets it. */
  private async checkValidity(): Promise<void> {
    if (this.stopped || this.inflight) return;
    const current = await this.current();
    if (!current.valid || !current.cookie) return;
    const verdict = await this.verdicts.check(subject(current, current.cookie));
    if (!verdict.shared) this.ctx.metrics.probes.inc({ session: this.name, trigger: 'periodic', result: verdict.state });
    if (verdict.state !== 'dead' || this.stopped) return;
    this.ctx.log.warn({ generation: current.generation, reason: verdict.reason }, 'periodic probe: the backend no longer knows the session; replacing it');
    const floorLeft = (current.lastLoginAt ?? 0) + this.floorMs - Date.now();
    if (floorLeft > 0) await delay(floorLeft);
    if (!this.stopped) await this.refresh('probe', { ifGenerationAtMost: current.generation, urgent: true });
  }

  /**
   * Called when the secret file (password, client secret, key) changed: get a credential with
   * the new secret now, unless the one in use was obtained after the change (a 401 that came
   * with the rotation already did it: a second one would be a login for nothing).
   */
  async passwordChanged(): Promise<RefreshResult | undefined> {
    this.nextAttemptAt = 0;
    this.ctx.log.info('the secret file changed');
    if (this.inflight) await this.inflight;
    const file = sessionSecret(this.ctx.session).file;
    const changedAt = file === undefined ? undefined : await stat(file).then((s) => s.mtimeMs, () => undefined);
    const current = await this.current();
    if (changedAt !== undefined && current.valid && current.obtainedAt !== undefined && current.obtainedAt > changedAt) {
      this.ctx.log.info({ generation: current.generation }, 'the secret file changed; the credential in use was obtained after that, nothing to do');
      return undefined;
    }
    return this.refresh('watch', { force: true });
  }

  /** Called when the include changed on disk: put ours back if someone else edited it. */
  async includeChanged(): Promise<void> {
    if (this.inflight) await this.inflight;
    // Another node's record being installed writes the include before the state file.
    while (this.installs.size > 0) await Promise.allSettled([...this.installs]);
    const current = await this.current();
    if (current.valid || this.stopped) return;
    const restored = this.lastGoodInclude ? await reinstallInclude(this.ctx.config, this.ctx.session, this.deps, this.lastGoodInclude).catch(() => false) : false;
    if (!restored) await this.refresh('watch', {});
  }

  /** Installs of other nodes' records in flight (see includeChanged). */
  private readonly installs = new Set<Promise<unknown>>();

  private async whileInstalling<T>(work: () => Promise<T>): Promise<T> {
    const running = work();
    this.installs.add(running);
    try {
      return await running;
    } finally {
      this.installs.delete(running);
    }
  }

  private async scheduledRefresh(): Promise<void> {
    const current = await this.current();
    await this.refresh('schedule', { ifGenerationAtMost: current.generation, renew: true });
  }

  private async run(trigger: Trigger, options: RefreshOptions): Promise<RefreshResult> {
    const { metrics } = this.ctx;
    metrics.refreshes.inc({ session: this.name, trigger });
    let result: RefreshResult;
    try {
      const outcome = await this.pass(options);
      if (outcome.action === 'login') metrics.logins.inc({ session: this.name, result: 'ok' });
      if (outcome.action === 'renewal') metrics.renewals.inc({ session: this.name });
      if (outcome.urgent && (outcome.action === 'login' || outcome.action === 'renewal')) this.replacedRefused = outcome.generation;
      if (outcome.action === 'login') this.background.track(this.verifyNewCookie(outcome.generation));
      if (outcome.reloadOwed) this.reloadBehind(outcome.generation, outcome.urgent === true);
      this.failures = 0;
      this.nextAttemptAt = 0;
      this.lastError = undefined;
      result = { ok: true, outcome };
    } catch (error) {
      if (!(error instanceof RefresherError)) throw error;
      if (LOGIN_ERRORS.has(error.code)) metrics.logins.inc({ session: this.name, result: loginResult(error.code) });
      this.fail(error, trigger);
      result = { ok: false, error };
    }
    if (!this.stopped) await this.reschedule(result);
    return result;
  }

  /** One pipeline pass; with a fleet, the fleet decides whether it logs in or installs another node's cookie. */
  private pass(options: RefreshOptions): Promise<RefreshOutcome> {
    const { config, session, fleet } = this.ctx;
    const local = (generation?: number) => refreshSession(config, session, this.deps, { ...options, generation, deferReload: true });
    if (!fleet) return local();
    return fleet.refresh(options.ifGenerationAtMost ?? this.seen.generation, options.urgent === true || options.force === true, local);
  }

  private fail(error: RefresherError, trigger: Trigger | 'reload'): void {
    const { config, log } = this.ctx;
    this.failures++;
    this.lastError = error;
    const delayMs = retryDelay(this.failures, config.daemon.retry_min * 1000, config.daemon.retry_max * 1000, this.ctx.random);
    this.nextAttemptAt = Date.now() + delayMs;
    log.error({ trigger, code: error.code, attempt: this.failures, retry_in_ms: delayMs }, error.message);
  }

  /** Reloads nginx for `generation` behind the pass; a failure is retried like a failed refresh. */
  private reloadBehind(generation: number, urgent: boolean): void {
    const { config, session, deps, metrics } = this.ctx;
    const job = (async () => {
      try {
        const outcome = await reloadOwed(config, session, deps, generation, urgent);
        metrics.reloads.inc({ result: outcome.reloaded ? 'ok' : 'not_running' });
        if (outcome.reloaded && this.ctx.verify && !(await this.ctx.verify(generation))) metrics.reloads.inc({ result: 'unverified' });
      } catch (error) {
        if (!(error instanceof RefresherError)) throw error;
        if (this.stopped) {
          this.ctx.log.info({ generation }, error.message);
          return;
        }
        metrics.reloads.inc({ result: 'failed' });
        this.fail(error, 'reload');
        if (!this.stopped) await this.reschedule({ ok: false, error });
      }
    })();
    this.background.track(job);
  }

  /** Sets the next refresh (and the expiry watch) from what is on disk now. */
  private async reschedule(result: RefreshResult): Promise<void> {
    clearTimeout(this.timer);
    clearTimeout(this.expiryTimer);
    const current = await this.current();
    const now = Date.now();
    const { session } = this.ctx;
    let next: number | undefined;
    if (!result.ok) next = Math.max(0, this.nextAttemptAt - now);
    else if (!(session.schedule && session.schedule_only) && current.expiresAt !== undefined) next = nextRefreshDelay(current.expiresAt, now, this.ctx.random);
    if (next !== undefined) this.timer = setTimeout(() => void this.scheduledRefresh(), Math.min(next, MAX_TIMER_MS));
    if (current.expiresAt !== undefined && current.cookie) {
      // An expired cookie is never served: blank the include when it runs out with no new cookie.
      this.expiryTimer = setTimeout(() => void this.expire(), Math.min(Math.max(0, current.expiresAt - now), MAX_TIMER_MS));
    }
  }

  private async expire(): Promise<void> {
    if (this.stopped) return;
    if (this.inflight) await this.inflight;
    const current = await this.current();
    if (current.valid || !current.cookie) return;
    try {
      await blankExpiredSession(this.ctx.config, this.ctx.session, this.deps);
    } catch (error) {
      this.ctx.log.error({ err: error }, 'could not blank the expired session');
    }
    await this.current();
  }
}

function subject(current: CurrentSession, cookie: string): Subject {
  return { generation: current.generation, cookie, obtainedAt: current.obtainedAt };
}
