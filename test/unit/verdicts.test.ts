/**
 * The 401 path's questions to the backend: one probe per burst, only answers sent after the 401
 * arrived, probes spaced for a client hammering a forbidden path, and the loop guard. The probe
 * is a stand-in that answers when the test says so; the clock and the spacing timer are injected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Verdicts, type Subject } from '../../src/daemon/verdicts.js';
import type { ProbeResult } from '../../src/session/probe.js';

const ALIVE: ProbeResult = { state: 'alive', setCookie: [], serverDate: undefined, receivedAt: new Date(0) };
const DEAD: ProbeResult = { state: 'dead', reason: 'the backend no longer knows the session (userCtx.name is null)' };

/** A probe whose answers the test releases, counting calls. */
function backend() {
  const pending: { resolve: (r: ProbeResult) => void; reject: (e: Error) => void }[] = [];
  const calls: string[] = [];
  const next = () => {
    const waiting = pending.shift();
    assert.ok(waiting, 'no probe is waiting for an answer');
    return waiting;
  };
  return {
    calls,
    probe: (cookie: string) => {
      calls.push(cookie);
      return new Promise<ProbeResult>((resolve, reject) => pending.push({ resolve, reject }));
    },
    answer: (result: ProbeResult) => next().resolve(result),
    fail: (error: Error) => next().reject(error),
  };
}

/** A spacing timer the test fires by hand; `waits` holds the delays asked for. */
function timer() {
  const waits: number[] = [];
  const pending: (() => void)[] = [];
  return {
    waits,
    wait: (ms: number) => {
      waits.push(ms);
      return new Promise<void>((resolve) => pending.push(resolve));
    },
    fire() {
      const next = pending.shift();
      assert.ok(next, 'no spaced probe is waiting');
      next();
    },
  };
}

function setup(spacingMs = 1000) {
  const b = backend();
  const t = timer();
  let clock = 1_000_000;
  const verdicts = new Verdicts({ probe: b.probe, now: () => clock, spacingMs, wait: t.wait, youngMs: 2000, loopHoldMs: 30_000 });
  return { b, t, verdicts, tick: (ms: number) => (clock += ms), now: () => clock };
}

/** Lets queued promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const subject = (generation: number, obtainedAt: number | undefined): Subject => ({ generation, cookie: `AuthSession=g${generation}`, obtainedAt });

describe('Verdicts.onUnauthorized', () => {
  it('sends one probe for a burst of concurrent 401s and gives all of them its answer', async () => {
    const { b, verdicts, now } = setup();
    const burst = Array.from({ length: 50 }, () => verdicts.onUnauthorized(subject(3, now() - 60_000)));
    assert.equal(b.calls.length, 1);
    b.answer(DEAD);
    const answers = await Promise.all(burst);
    assert.deepEqual(new Set(answers.map((a) => a.state)), new Set(['dead']));
    assert.equal(answers.filter((a) => !a.shared).length, 1, 'exactly one caller sent the probe');
  });

  it('answers a 401 that arrives while an older probe runs with the next probe, not the older one', async () => {
    const { b, t, verdicts, tick, now } = setup(250);
    const periodic = verdicts.check(subject(3, now() - 60_000));
    tick(5);
    const late = verdicts.onUnauthorized(subject(3, now() - 60_000));
    b.answer(ALIVE);
    assert.equal((await periodic).state, 'alive');
    await settle();
    assert.equal(b.calls.length, 1, 'the next probe waits for the spacing');
    assert.deepEqual(t.waits, [245], 'the next probe goes out 250 ms after the last one was sent');
    t.fire();
    await settle();
    assert.equal(b.calls.length, 2, 'the session may have died between the older probe and this 401');
    b.answer(DEAD);
    assert.deepEqual(await late, { state: 'dead', reason: DEAD.reason, shared: false });
  });

  it('costs one probe per spacingMs for a client hammering a forbidden path, every 401 in between sharing the next one', async () => {
    const { b, t, verdicts, tick, now } = setup(250);
    const first = verdicts.onUnauthorized(subject(3, now() - 60_000));
    b.answer(ALIVE);
    assert.deepEqual(await first, { state: 'alive', reason: 'the backend knows the session', shared: false });
    tick(10);
    const burst = Array.from({ length: 20 }, () => verdicts.onUnauthorized(subject(3, now() - 60_000)));
    await settle();
    assert.equal(b.calls.length, 1, 'no probe inside the spacing');
    t.fire();
    await settle();
    assert.equal(b.calls.length, 2, 'one probe for the whole burst');
    b.answer(ALIVE);
    const answers = await Promise.all(burst);
    assert.deepEqual(new Set(answers.map((a) => a.state)), new Set(['alive']));
    assert.equal(answers.filter((a) => !a.shared).length, 1, 'exactly one caller counts as having sent it');
  });

  it('wakes every 401 waiting for the next probe as soon as the backend refuses the cookie, and sends no more probes', async () => {
    const { b, t, verdicts, tick, now } = setup(250);
    const first = verdicts.onUnauthorized(subject(3, now() - 60_000));
    tick(1);
    const waiting = Array.from({ length: 10 }, () => verdicts.onUnauthorized(subject(3, now() - 60_000)));
    b.answer(DEAD);
    assert.equal((await first).state, 'dead');
    const answers = await Promise.all(waiting);
    assert.deepEqual(new Set(answers.map((a) => a.state)), new Set(['dead']), 'answered before the spacing timer fired');
    assert.equal(answers.filter((a) => !a.shared).length, 0, 'none of them sent a probe');
    t.fire();
    await settle();
    assert.equal(b.calls.length, 1, 'the spaced probe is not sent once the answer is known');
  });

  it('answers a 401 with a probe sent after it arrived, without waiting for the spacing', async () => {
    const { b, verdicts, now } = setup(250);
    const first = verdicts.onUnauthorized(subject(3, now() - 60_000));
    const same = verdicts.onUnauthorized(subject(3, now() - 60_000));
    assert.equal(b.calls.length, 1, 'the second 401 arrived no later than the probe was sent: it shares it');
    b.answer(ALIVE);
    assert.equal((await first).state, 'alive');
    assert.deepEqual(await same, { state: 'alive', reason: 'the backend knows the session', shared: true });
  });

  it('does not reuse an alive answer for another generation', async () => {
    const { b, verdicts, now } = setup();
    const first = verdicts.onUnauthorized(subject(3, now()));
    b.answer(ALIVE);
    await first;
    const other = verdicts.onUnauthorized(subject(4, now()));
    assert.equal(b.calls.length, 2);
    assert.equal(b.calls[1], 'AuthSession=g4', 'the probe carries the cookie of the generation asked about');
    b.answer(ALIVE);
    await other;
  });

  it('never reuses a periodic probe\'s alive answer for a 401', async () => {
    const { b, t, verdicts, tick, now } = setup();
    const periodic = verdicts.check(subject(3, now() - 60_000));
    b.answer(ALIVE);
    await periodic;
    tick(2000);
    const after401 = verdicts.onUnauthorized(subject(3, now() - 60_000));
    assert.equal(b.calls.length, 2, 'the session may have died between the periodic probe and the 401');
    assert.deepEqual(t.waits, [], 'past the spacing, the probe goes out at once');
    b.answer(DEAD);
    assert.equal((await after401).state, 'dead');
  });
});

describe('Verdicts.check', () => {
  it('does not join a probe sent before notBefore: a credential a pass brought is asked about again', async () => {
    const { b, verdicts, tick, now } = setup(250);
    const periodic = verdicts.check(subject(4, now() - 60_000));
    tick(3);
    const arrived = now();
    const asked = verdicts.check(subject(4, now() - 60_000), arrived);
    assert.equal(b.calls.length, 2, 'a probe of its own, sent at once, without the spacing');
    b.answer(ALIVE);
    b.answer(DEAD);
    assert.equal((await periodic).state, 'alive');
    assert.deepEqual(await asked, { state: 'dead', reason: DEAD.reason, shared: false });
  });

  it('joins the probe in flight when it was sent at or after notBefore', async () => {
    const { b, verdicts, now } = setup(250);
    const first = verdicts.check(subject(4, now() - 60_000));
    const second = verdicts.check(subject(4, now() - 60_000), now());
    assert.equal(b.calls.length, 1);
    b.answer(ALIVE);
    assert.equal((await first).shared, false);
    assert.deepEqual(await second, { state: 'alive', reason: 'the backend knows the session', shared: true });
  });
});

describe('Verdicts with a failing probe', () => {
  it('hands the failure to every 401 that waited for a spaced probe, instead of leaving them waiting', async () => {
    const { b, t, verdicts, tick, now } = setup(250);
    const first = verdicts.onUnauthorized(subject(3, now() - 60_000));
    b.answer(ALIVE);
    await first;
    tick(10);
    const waiting = Array.from({ length: 3 }, () => verdicts.onUnauthorized(subject(3, now() - 60_000)));
    t.fire();
    await settle();
    b.fail(new Error('probe broke'));
    const outcomes = await Promise.allSettled(waiting);
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected', 'rejected']);
  });
});

describe('Verdicts.loop', () => {
  const refuse = async (v: Verdicts, b: ReturnType<typeof backend>, s: Subject) => {
    const p = v.onUnauthorized(s);
    b.answer(DEAD);
    await p;
  };

  it('is not raised by one young refusal: a backend restart right after a login is a rotation', async () => {
    const { b, verdicts, now } = setup();
    await refuse(verdicts, b, subject(3, now() - 100));
    assert.equal(verdicts.loop(), undefined);
  });

  it('is not raised by two young refusals: a secret rotated every few seconds on a slow machine can do that', async () => {
    const { b, verdicts, now } = setup();
    await refuse(verdicts, b, subject(3, now() - 300));
    await refuse(verdicts, b, subject(4, now() - 800));
    assert.equal(verdicts.loop(), undefined);
  });

  it('is raised by three young refusals in a row and names the cause with the cookie\'s age', async () => {
    const { b, verdicts, now, tick } = setup();
    await refuse(verdicts, b, subject(2, now() - 100));
    await refuse(verdicts, b, subject(3, now() - 100));
    tick(1000);
    await refuse(verdicts, b, subject(4, now() - 40));
    const loop = verdicts.loop();
    assert.ok(loop);
    assert.equal(loop.ageMs, 40);
    assert.match(loop.message, /refused a cookie it issued 40 ms earlier: do all backend nodes share the same cookie secret/);
  });

  it('counts a generation once, and asks no more about a cookie the backend refused', async () => {
    const { b, verdicts, now } = setup();
    await refuse(verdicts, b, subject(3, now() - 100));
    assert.deepEqual(await verdicts.onUnauthorized(subject(3, now() - 100)), { state: 'dead', reason: 'the backend refused this cookie moments ago', shared: true });
    assert.equal(b.calls.length, 1, 'the rest of a storm costs no probe');
    assert.equal(verdicts.loop(), undefined);
  });

  it('is lowered by a refusal of a cookie that had lived past youngMs, and after loopHoldMs', async () => {
    const { b, verdicts, now, tick } = setup();
    await refuse(verdicts, b, subject(2, now() - 10));
    await refuse(verdicts, b, subject(3, now() - 10));
    await refuse(verdicts, b, subject(4, now() - 10));
    assert.ok(verdicts.loop());
    await refuse(verdicts, b, subject(5, now() - 5000));
    assert.equal(verdicts.loop(), undefined, 'a cookie that lived 5 s and then died is a rotation');
    await refuse(verdicts, b, subject(6, now() - 10));
    await refuse(verdicts, b, subject(7, now() - 10));
    await refuse(verdicts, b, subject(8, now() - 10));
    assert.ok(verdicts.loop());
    tick(30_001);
    assert.equal(verdicts.loop(), undefined);
  });
});

describe('Verdicts.verified', () => {
  it('raises the loop guard when two new cookies in a row fail their own verification, and lowers it when one passes', () => {
    const { verdicts, now } = setup();
    verdicts.verified(subject(3, now() - 30), false);
    assert.equal(verdicts.loop(), undefined, 'one refusal right after a login can be a rotation that fell in between');
    verdicts.verified(subject(4, now() - 25), false);
    assert.match(verdicts.loop()?.message ?? '', /refused a cookie it issued 25 ms earlier/);
    verdicts.verified(subject(5, now() - 20), true);
    assert.equal(verdicts.loop(), undefined);
  });
});

describe('Verdicts.onUnauthorized with a challenge', () => {
  it('takes invalid_token as the backend\'s word: dead with no probe, and the rest of the burst shares it', async () => {
    const { b, verdicts, now } = setup();
    const first = await verdicts.onUnauthorized(subject(4, now() - 60_000), 'dead');
    assert.equal(first.state, 'dead');
    assert.match(first.reason, /invalid_token/);
    const rest = await verdicts.onUnauthorized(subject(4, now() - 60_000), 'unknown');
    assert.equal(rest.state, 'dead', 'a token the backend refused stays refused for its generation');
    assert.equal(b.calls.length, 0, 'no probe was asked');
  });

  it('takes insufficient_scope as an answer about the request: alive, no probe', async () => {
    const { b, verdicts, now } = setup();
    const answer = await verdicts.onUnauthorized(subject(5, now() - 60_000), 'authorization');
    assert.equal(answer.state, 'alive');
    assert.equal(b.calls.length, 0);
  });

  it('counts young invalid_token refusals towards the loop guard like dead probes', async () => {
    const { verdicts, tick, now } = setup();
    for (let g = 1; g <= 3; g++) {
      await verdicts.onUnauthorized(subject(g, now() - 100), 'dead');
      tick(10);
    }
    assert.ok(verdicts.loop(), 'three tokens refused within youngMs of being obtained raise the guard');
  });
});
