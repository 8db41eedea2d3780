/**
 * What a 401 for the current generation means, asked of the backend rather than guessed from a
 * timer: one `GET /_session` per burst, shared by every caller that arrives while it runs.
 *
 * - Session alive: the 401 is the backend's authorization answer (the account may not read that
 *   database or admin path). No login. The answer stands for `reuseMs` for further 401s on the
 *   same generation, so a client hammering a forbidden path costs one probe per `reuseMs`.
 * - Session dead (new secret, backend restart, expiry): log in at once, whatever the cookie's age.
 * - Cookies refused three times in a row within `youngMs` of being obtained are a loop, not a
 *   rotation: typically backend nodes that do not share their cookie secret. The guard says so.
 *
 * The clock and the probe are injected, so the rules are tested without a backend.
 */
import type { Challenge, CredentialCheck } from '../credentials/kind.js';

/**
 * Young refusals in a row that raise the loop guard. Behind a balancer over nodes with different
 * secrets they come within milliseconds, many a second; a backend rotating its secret every few
 * seconds on a slow machine can produce two, not three.
 */
const YOUNG_REFUSALS = 3;
/**
 * Logins in a row whose new cookie failed one of its own verification probes. A rotation would
 * have to fall into the milliseconds between a login and its probes twice running.
 */
const OWN_REFUSALS = 2;

/** The cookie a verdict is about. */
export interface Subject {
  generation: number;
  /** `Name=value`. */
  cookie: string;
  /** Epoch ms the cookie was obtained (login or renewal), when known. */
  obtainedAt: number | undefined;
}

/** What the backend said; `shared` when this caller joined or reused another caller's probe. */
export interface Verdict {
  state: CredentialCheck['state'];
  reason: string;
  shared: boolean;
}

/** A loop the guard has seen: the newest young refusal. */
export interface LoopSuspicion {
  /** How old the refused cookie was, in ms. */
  ageMs: number;
  at: number;
  message: string;
}

export interface VerdictOptions {
  probe: (cookie: string) => Promise<CredentialCheck>;
  now?: () => number;
  /** How long an "alive" answer to a 401 stands for further 401s on the same generation. */
  reuseMs: number;
  /** A cookie refused within this many ms of being obtained is young. */
  youngMs?: number;
  /** How long the loop guard stays raised after the last young refusal. */
  loopHoldMs?: number;
  /** What the credential is called in reasons: `cookie` (the default), `token`. */
  noun?: string;
}

/** Probes shared per generation, the reuse of authorization answers, and the loop guard. */
export class Verdicts {
  private readonly inflight = new Map<number, Promise<CredentialCheck>>();
  private authorization: { generation: number; at: number } | undefined;
  private lastDeadGeneration = -1;
  private youngRefusals = 0;
  private ownRefusals = 0;
  private lastYoung: LoopSuspicion | undefined;
  private readonly now: () => number;
  private readonly youngMs: number;
  private readonly loopHoldMs: number;

  constructor(private readonly options: VerdictOptions) {
    this.now = options.now ?? Date.now;
    this.youngMs = options.youngMs ?? 1000;
    this.loopHoldMs = options.loopHoldMs ?? 30_000;
    this.noun = options.noun ?? 'cookie';
  }

  private readonly noun: string;

  /**
   * For a 401 on `subject`'s generation: what the backend says of the credential. A challenge
   * that names the credential (RFC 6750 `invalid_token`) or the request (`insufficient_scope`)
   * is the backend's own answer, so no probe is asked; `unknown` asks the probe.
   */
  async onUnauthorized(subject: Subject, challenge: Challenge = 'unknown'): Promise<Verdict> {
    // A credential the backend refused stays refused: the rest of a storm needs no probe of its own.
    if (subject.generation === this.lastDeadGeneration) return { state: 'dead', reason: `the backend refused this ${this.noun} moments ago`, shared: true };
    if (challenge === 'dead') {
      this.recordDeath(subject);
      return { state: 'dead', reason: "the backend's challenge says the token is invalid (invalid_token)", shared: false };
    }
    if (challenge === 'authorization') return { state: 'alive', reason: "the backend's challenge says the request needs more than the token grants (insufficient_scope)", shared: true };
    const a = this.authorization;
    if (a && a.generation === subject.generation && this.now() - a.at < this.options.reuseMs) {
      return { state: 'alive', reason: 'the session was confirmed alive moments ago', shared: true };
    }
    const { result, shared } = this.probeShared(subject);
    const answer = await result;
    if (answer.state === 'alive') this.authorization = { generation: subject.generation, at: this.now() };
    if (answer.state === 'dead') this.recordDeath(subject);
    return { state: answer.state, reason: answer.state === 'alive' ? 'the backend knows the session' : answer.reason, shared };
  }

  /** For the periodic validity check: a probe of its own (or the one in flight), never a reused answer. */
  async check(subject: Subject): Promise<Verdict> {
    const { result, shared } = this.probeShared(subject);
    const answer = await result;
    if (answer.state === 'dead') this.recordDeath(subject);
    return { state: answer.state, reason: answer.state === 'alive' ? 'the backend knows the session' : answer.reason, shared };
  }

  /** The loop the guard sees now, or undefined. */
  loop(): LoopSuspicion | undefined {
    const y = this.lastYoung;
    if (!y || (this.youngRefusals < YOUNG_REFUSALS && this.ownRefusals < OWN_REFUSALS) || this.now() - y.at > this.loopHoldMs) return undefined;
    return y;
  }

  /**
   * The result of a new cookie's own verification (a few probes right after the login): refused
   * by any of them counts towards the loop guard; accepted by all of them lowers it.
   */
  verified(subject: Subject, accepted: boolean): void {
    if (accepted) {
      this.ownRefusals = 0;
      this.youngRefusals = 0;
      return;
    }
    this.ownRefusals++;
    const at = this.now();
    const ageMs = subject.obtainedAt === undefined ? 0 : Math.max(0, at - subject.obtainedAt);
    this.lastYoung = { ageMs, at, message: loopMessage(ageMs) };
  }

  private probeShared(subject: Subject): { result: Promise<CredentialCheck>; shared: boolean } {
    const running = this.inflight.get(subject.generation);
    if (running) return { result: running, shared: true };
    const result = this.options.probe(subject.cookie).finally(() => this.inflight.delete(subject.generation));
    this.inflight.set(subject.generation, result);
    return { result, shared: false };
  }

  /** Counts a refused cookie once per generation; YOUNG_REFUSALS young refusals in a row raise the guard. */
  private recordDeath(subject: Subject): void {
    if (subject.generation === this.lastDeadGeneration) return;
    this.lastDeadGeneration = subject.generation;
    if (this.authorization?.generation === subject.generation) this.authorization = undefined;
    const at = this.now();
    const ageMs = subject.obtainedAt === undefined ? Infinity : Math.max(0, at - subject.obtainedAt);
    if (ageMs >= this.youngMs) {
      this.youngRefusals = 0;
      return;
    }
    this.youngRefusals++;
    this.lastYoung = { ageMs, at, message: loopMessage(ageMs) };
  }
}

function loopMessage(ageMs: number): string {
  return `the backend refused a cookie it issued ${Math.round(ageMs)} ms earlier: do all backend nodes share the same cookie secret (couch_httpd_auth/secret)?`;
}
