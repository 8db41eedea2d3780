/**
 * What a 401 for the current generation means, asked of the backend rather than guessed from a
 * timer: one `GET /_session` per burst, shared by every caller that arrived before it was sent.
 *
 * - Session alive: the 401 is the backend's authorization answer (the account may not read that
 *   database or admin path). No login.
 * - An answer counts for a 401 only if its probe was sent after that 401 reached the daemon: a
 *   probe sent earlier may have seen the session alive just before it died, and the client would
 *   get the 401. A 401 that arrives while an older probe runs, or within `spacingMs` of the last
 *   probe's start, waits for the next probe, which every such 401 shares; so a client hammering a
 *   forbidden path costs one probe per `spacingMs`, and a refusal wakes every waiter at once.
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
  /** 401s on one generation cost at most one probe per this many ms (the first one is sent at once). */
  spacingMs: number;
  /** Waits `ms` before a spaced probe; default: a timer that does not hold the process open. */
  wait?: (ms: number) => Promise<void>;
  /** A cookie refused within this many ms of being obtained is young. */
  youngMs?: number;
  /** How long the loop guard stays raised after the last young refusal. */
  loopHoldMs?: number;
  /** What the credential is called in reasons: `cookie` (the default), `token`. */
  noun?: string;
}

/** A probe of one generation's credential, sent at `startedAt`. */
interface Probe {
  generation: number;
  startedAt: number;
  answered: boolean;
  result: Promise<CredentialCheck>;
}

/** An answer, and whether this caller's probe is the one that went out. */
interface Asked {
  answer: CredentialCheck;
  sent: boolean;
}

/** The next probe of a generation, sent once the spacing allows; a refusal answers it early. */
interface Scheduled {
  generation: number;
  result: Promise<Asked>;
  /** Answers every waiter without sending the probe. */
  refuse: (answer: CredentialCheck) => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Probes shared per generation, spaced for 401 bursts, and the loop guard. */
export class Verdicts {
  /** The newest probe sent (one generation is current at a time). */
  private latest: Probe | undefined;
  private scheduled: Scheduled | undefined;
  private lastDeadGeneration = -1;
  private youngRefusals = 0;
  private ownRefusals = 0;
  private lastYoung: LoopSuspicion | undefined;
  private readonly now: () => number;
  private readonly wait: (ms: number) => Promise<void>;
  private readonly youngMs: number;
  private readonly loopHoldMs: number;
  private readonly noun: string;

  constructor(private readonly options: VerdictOptions) {
    this.now = options.now ?? Date.now;
    this.wait = options.wait ?? sleep;
    this.youngMs = options.youngMs ?? 1000;
    this.loopHoldMs = options.loopHoldMs ?? 30_000;
    this.noun = options.noun ?? 'cookie';
  }

  /**
   * For a 401 on `subject`'s generation that reached the daemon at `receivedAt` (epoch ms, by
   * this object's clock): what the backend says of the credential. A challenge that names the
   * credential (RFC 6750 `invalid_token`) or the request (`insufficient_scope`) is the backend's
   * own answer, so no probe is asked; `unknown` asks a probe sent after `receivedAt`.
   */
  async onUnauthorized(subject: Subject, challenge: Challenge = 'unknown', receivedAt = this.now()): Promise<Verdict> {
    // A credential the backend refused stays refused: the rest of a storm needs no probe of its own.
    if (subject.generation === this.lastDeadGeneration) return this.refused();
    if (challenge === 'dead') {
      this.recordDeath(subject);
      return { state: 'dead', reason: "the backend's challenge says the token is invalid (invalid_token)", shared: false };
    }
    if (challenge === 'authorization') return { state: 'alive', reason: "the backend's challenge says the request needs more than the token grants (insufficient_scope)", shared: true };
    const since = this.sentSince(subject.generation, receivedAt);
    const { answer, sent } = since ? { answer: await since.result, sent: false } : await this.nextProbe(subject);
    if (answer.state === 'dead') this.recordDeath(subject);
    return this.verdict(answer, !sent);
  }

  /**
   * For the periodic validity check, or a credential a pass brought: the probe in flight if it
   * was sent at or after `notBefore`, else a probe of its own sent now. Never a spaced wait.
   */
  async check(subject: Subject, notBefore = -Infinity): Promise<Verdict> {
    const running = this.sentSince(subject.generation, notBefore);
    const joined = running !== undefined && !running.answered;
    const answer = await (joined ? running.result : this.send(subject));
    if (answer.state === 'dead') this.recordDeath(subject);
    return this.verdict(answer, joined);
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

  private send(subject: Subject): Promise<CredentialCheck> {
    const probe: Probe = { generation: subject.generation, startedAt: this.now(), answered: false, result: this.options.probe(subject.cookie) };
    void probe.result.finally(() => (probe.answered = true)).catch(() => undefined);
    this.latest = probe;
    return probe.result;
  }

  /** The newest probe of `generation`, if it was sent at or after `t`. */
  private sentSince(generation: number, t: number): Probe | undefined {
    const latest = this.latest;
    return latest && latest.generation === generation && latest.startedAt >= t ? latest : undefined;
  }

  /**
   * The next probe of the generation: sent at once when the spacing allows, else the one
   * scheduled, shared. `sent` is true for the one caller whose probe went out.
   */
  private nextProbe(subject: Subject): Promise<Asked> {
    const s = this.scheduled;
    if (s && s.generation === subject.generation) return s.result.then(({ answer }) => ({ answer, sent: false }));
    const latest = this.latest;
    const waitMs = latest && latest.generation === subject.generation ? latest.startedAt + this.options.spacingMs - this.now() : 0;
    if (waitMs <= 0) return this.send(subject).then((answer) => ({ answer, sent: true }));
    // One answer for every waiter: the spaced probe's, or a refusal that came first (then no probe goes out).
    let resolve: (asked: Asked) => void = () => undefined;
    let reject: (error: unknown) => void = () => undefined;
    const result = new Promise<Asked>((res, rej) => ((resolve = res), (reject = rej)));
    const scheduled: Scheduled = { generation: subject.generation, result, refuse: (answer) => resolve({ answer, sent: false }) };
    this.scheduled = scheduled;
    void this.wait(waitMs).then(() => {
      if (this.scheduled !== scheduled) return;
      this.scheduled = undefined;
      this.send(subject).then((answer) => resolve({ answer, sent: true }), reject);
    });
    return result;
  }

  private refused(): Verdict {
    return { state: 'dead', reason: `the backend refused this ${this.noun} moments ago`, shared: true };
  }

  private verdict(answer: CredentialCheck, shared: boolean): Verdict {
    return { state: answer.state, reason: answer.state === 'alive' ? 'the backend knows the session' : answer.reason, shared };
  }

  /** Counts a refused cookie once per generation; YOUNG_REFUSALS young refusals in a row raise the guard. */
  private recordDeath(subject: Subject): void {
    if (subject.generation === this.lastDeadGeneration) return;
    this.lastDeadGeneration = subject.generation;
    // 401s waiting for a spaced probe of this credential have their answer now.
    const s = this.scheduled;
    if (s && s.generation === subject.generation) {
      this.scheduled = undefined;
      s.refuse({ state: 'dead', reason: `the backend refused this ${this.noun} moments ago` });
    }
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
