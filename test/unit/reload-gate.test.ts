/**
 * The daemon's limit on nginx reloads: at most `perMinute` in any sliding minute, and every
 * reload asked for while one waits for room shares that one, so a storm of refreshes cannot pile
 * up nginx worker generations.
 *
 * The clock is injected. The one real wait is the gate's own timer: each test sets the clock
 * 10 ms short of the end of the window, so the gate waits 10 ms, and moves the clock to the end of
 * the window before that timer fires. Tests synchronise on the fake nginx being called, never on
 * time.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Reloader } from '../../src/nginx/reload.js';
import { rateLimitedReloader } from '../../src/daemon/reload-gate.js';

const T0 = Date.parse('2026-11-22T10:00:00Z');
const MINUTE = 60_000;
/** A gate that waits out a real minute, or forever, fails the test instead of hanging the run. */
const TIMEOUT = { timeout: 5_000 };
/** The clock reading that leaves the gate 10 ms to wait for a reload made at `t`. */
const justBeforeMinuteAfter = (t: number): number => t + MINUTE - 10;

/** A stand-in for the inner reloader: counts calls, can hold them open or make them fail. */
class FakeNginx implements Reloader {
  readonly description = 'SIGHUP to a fake nginx';
  calls = 0;
  private holding = false;
  private failWith: Error | undefined;
  private held: (() => void)[] = [];
  private watchers: { calls: number; resolve: () => void }[] = [];

  reload(): Promise<void> {
    this.calls++;
    for (const w of this.watchers.filter((w) => w.calls <= this.calls)) w.resolve();
    this.watchers = this.watchers.filter((w) => w.calls > this.calls);
    const error = this.failWith;
    this.failWith = undefined;
    if (error) return Promise.reject(error);
    if (this.holding) return new Promise((resolve) => this.held.push(resolve));
    return Promise.resolve();
  }

  /** Resolves once reload() has been called `calls` times in all. */
  reachedCalls(calls: number): Promise<void> {
    if (this.calls >= calls) return Promise.resolve();
    return new Promise((resolve) => this.watchers.push({ calls, resolve }));
  }

  /** Later reloads stay in progress until release(). */
  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    for (const resolve of this.held.splice(0)) resolve();
  }

  /** The next reload rejects with `error`. */
  failNext(error: Error): void {
    this.failWith = error;
  }
}

/**
 * A gate over a fresh fake nginx with the clock at T0. Once the test has ended (a failing test
 * may end by timeout with its body still running), the test can no longer set the clock and every
 * reading is a day later than the last, so a gate still waiting finds room when its timer fires
 * and the test process can exit.
 */
function gate(t: TestContext, perMinute: number): { nginx: FakeNginx; reloader: Reloader; setClock(t: number): void } {
  const nginx = new FakeNginx();
  let clock = T0;
  let ended = false;
  t.after(() => {
    ended = true;
  });
  const now = (): number => (ended ? (clock += 86_400_000) : clock);
  return {
    nginx,
    reloader: rateLimitedReloader(nginx, perMinute, now),
    setClock: (to) => {
      if (!ended) clock = to;
    },
  };
}

describe('rateLimitedReloader', () => {
  it('passes every reload within the limit straight to nginx', TIMEOUT, async (t) => {
    const { nginx, reloader } = gate(t, 3);
    const reloads = [reloader.reload(), reloader.reload(), reloader.reload()];
    assert.equal(nginx.calls, 3);
    await Promise.all(reloads);
    assert.equal(nginx.calls, 3);
  });

  it('passes a reload straight to nginx once the oldest reload in the window is a minute old', TIMEOUT, async (t) => {
    const { nginx, reloader, setClock } = gate(t, 1);
    await reloader.reload();
    setClock(T0 + MINUTE);
    const second = reloader.reload();
    assert.equal(nginx.calls, 2);
    await second;
  });

  it('counts only the reloads of the last minute against the limit', TIMEOUT, async (t) => {
    const { nginx, reloader, setClock } = gate(t, 2);
    await reloader.reload();
    setClock(T0 + 30_000);
    await reloader.reload();
    setClock(T0 + MINUTE);
    const third = reloader.reload();
    assert.equal(nginx.calls, 3, 'the reload at T0 has left the window, so the third goes through at once');
    await third;
  });

  it('holds a reload over the limit until the window has room, then reloads nginx once', TIMEOUT, async (t) => {
    const { nginx, reloader, setClock } = gate(t, 1);
    await reloader.reload();
    setClock(justBeforeMinuteAfter(T0));
    const waiting = reloader.reload();
    assert.equal(nginx.calls, 1, 'the window is full: nginx must not be reloaded yet');
    setClock(T0 + MINUTE);
    await waiting;
    assert.equal(nginx.calls, 2);
  });

  it('gives every caller that arrives while a reload waits that same reload', TIMEOUT, async (t) => {
    const { nginx, reloader, setClock } = gate(t, 1);
    await reloader.reload();
    setClock(justBeforeMinuteAfter(T0));
    const callers = [reloader.reload(), reloader.reload(), reloader.reload(), reloader.reload()];
    assert.equal(nginx.calls, 1);
    setClock(T0 + MINUTE);
    await Promise.all(callers);
    assert.equal(nginx.calls, 2, 'four callers over the limit share one reload');
  });

  it('rejects every caller sharing a waiting reload when that reload fails', TIMEOUT, async (t) => {
    const { nginx, reloader, setClock } = gate(t, 1);
    await reloader.reload();
    const failure = new Error('nginx refused the reload');
    nginx.failNext(failure);
    setClock(justBeforeMinuteAfter(T0));
    const callers = [reloader.reload(), reloader.reload()];
    setClock(T0 + MINUTE);
    const results = await Promise.allSettled(callers);
    assert.deepEqual(results, [
      { status: 'rejected', reason: failure },
      { status: 'rejected', reason: failure },
    ]);
    assert.equal(nginx.calls, 2);
  });

  it('starts afresh after a shared reload has finished: a later caller gets a reload of its own', TIMEOUT, async (t) => {
    const { nginx, reloader, setClock } = gate(t, 1);
    await reloader.reload();
    setClock(justBeforeMinuteAfter(T0));
    const shared = reloader.reload();
    setClock(T0 + MINUTE);
    await shared;
    setClock(T0 + 2 * MINUTE);
    const later = reloader.reload();
    assert.equal(nginx.calls, 3, 'the window has room again, so the later reload goes through at once');
    await later;
  });

  it(
    'gives a caller that arrives after the waiting reload has reached nginx a reload of its own',
    TIMEOUT,
    async (t) => {
      const { nginx, reloader, setClock } = gate(t, 1);
      await reloader.reload();
      setClock(justBeforeMinuteAfter(T0));
      const shared = reloader.reload();
      setClock(T0 + MINUTE);
      nginx.hold();
      await nginx.reachedCalls(2);
      // nginx is reloading now; this caller's change may have missed it.
      setClock(justBeforeMinuteAfter(T0 + MINUTE));
      const late = reloader.reload();
      setClock(T0 + 2 * MINUTE);
      nginx.release();
      await Promise.all([shared, late]);
      assert.equal(nginx.calls, 3);
    },
  );

  it(
    'keeps reloading for later callers when the window opens between two readings of the clock',
    TIMEOUT,
    async () => {
      const nginx = new FakeNginx();
      let clock = T0;
      // Every reading is 1 ms after the one before, as a real clock's may be.
      const reloader = rateLimitedReloader(nginx, 1, () => clock++);
      await reloader.reload();
      // The next reading is 1 ms short of the end of the window, the one after reaches it.
      clock = T0 + MINUTE;
      await reloader.reload();
      assert.equal(nginx.calls, 2);
      clock = T0 + 10 * MINUTE;
      const later = reloader.reload();
      assert.equal(nginx.calls, 3, 'nine minutes later the window has room, so the reload must reach nginx at once');
      await later;
    },
  );

  it('sends an urgent reload to nginx at once even when the window is full', TIMEOUT, async (t) => {
    const { nginx, reloader } = gate(t, 1);
    await reloader.reload();
    const urgent = reloader.reload({ urgent: true });
    assert.equal(nginx.calls, 2, 'a reload replacing a refused cookie must not wait for the window');
    await urgent;
  });

  it('answers a routine reload waiting for room with an urgent one, so nginx is reloaded once for both', TIMEOUT, async (t) => {
    const { nginx, reloader, setClock } = gate(t, 1);
    await reloader.reload();
    setClock(T0 + 1000);
    const routine = reloader.reload();
    assert.equal(nginx.calls, 1, 'the routine reload waits for the window');
    await reloader.reload({ urgent: true });
    await routine;
    assert.equal(nginx.calls, 2, 'the waiting routine reload was satisfied by the urgent one');
    // Once the window has room again, a routine reload reaches nginx on its own.
    setClock(T0 + 2 * MINUTE);
    await reloader.reload();
    assert.equal(nginx.calls, 3);
  });

  it('names the limit in its description, after the inner reloader', (t) => {
    const { reloader } = gate(t, 4);
    assert.equal(reloader.description, 'SIGHUP to a fake nginx (routine reloads at most 4/min)');
  });
});

describe('rateLimitedReloader.close', () => {
  it('gives up a routine reload waiting for room with a ReloadError, and refuses later ones, without reloading nginx', TIMEOUT, async (t) => {
    const { nginx, reloader, setClock } = gate(t, 1);
    await reloader.reload();
    setClock(T0 + 1000);
    const waiting = reloader.reload();
    reloader.close!();
    await assert.rejects(waiting, (e: Error) => e.name === 'ReloadError' && /stays owed/.test(e.message));
    await assert.rejects(reloader.reload({ urgent: true }), /the daemon is stopping/);
    assert.equal(nginx.calls, 1);
  });
});
