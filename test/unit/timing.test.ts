/**
 * When the daemon acts next: the scheduled refresh at about half the cookie's remaining life,
 * and the backoff between retries of a failed refresh. Randomness is pinned, so every expected
 * delay is exact.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { nextRefreshDelay, retryDelay, type Random } from '../../src/daemon/timing.js';

const NOW = Date.parse('2026-11-22T10:00:00Z');
const TEN_MINUTES = 600_000;
/** The largest double below 1: the top of what Math.random can return. */
const ALMOST_ONE = 1 - Number.EPSILON / 2;

function fixed(value: number): Random {
  return () => value;
}

describe('nextRefreshDelay', () => {
  it('waits half the remaining life, 10% early with the lowest random number', () => {
    assert.equal(nextRefreshDelay(NOW + TEN_MINUTES, NOW, fixed(0)), 270_000);
  });

  it('waits exactly half the remaining life with the middle random number', () => {
    assert.equal(nextRefreshDelay(NOW + TEN_MINUTES, NOW, fixed(0.5)), 300_000);
  });

  it('waits up to 10% longer than half the remaining life with the highest random number', () => {
    assert.equal(nextRefreshDelay(NOW + TEN_MINUTES, NOW, fixed(0.999)), 329_940);
    assert.equal(nextRefreshDelay(NOW + TEN_MINUTES, NOW, fixed(ALMOST_ONE)), 330_000);
  });

  it('counts only the life left, not the life already used', () => {
    assert.equal(nextRefreshDelay(NOW + TEN_MINUTES, NOW + 400_000, fixed(0.5)), 100_000);
  });

  it('stays within 0.9 to 1.1 times half the remaining life for any random number', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4_000, max: 30 * 86_400_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (left, r) => {
        const delay = nextRefreshDelay(NOW + left, NOW, fixed(r));
        assert.ok(delay >= Math.floor((left / 2) * 0.9), `${delay} ms is less than 0.9 x ${left / 2} ms`);
        assert.ok(delay <= Math.ceil((left / 2) * 1.1), `${delay} ms is more than 1.1 x ${left / 2} ms`);
      }),
    );
  });

  it('never waits less than the floor, however close the expiry', () => {
    assert.equal(nextRefreshDelay(NOW + 1_500, NOW, fixed(0)), 1_000);
    assert.equal(nextRefreshDelay(NOW + 1, NOW, fixed(0.5)), 1_000);
    assert.equal(nextRefreshDelay(NOW + 8_000, NOW, fixed(0.5), 5_000), 5_000);
  });

  it('waits the floor when nothing is left or the cookie has already expired', () => {
    assert.equal(nextRefreshDelay(NOW, NOW, fixed(0.5)), 1_000);
    assert.equal(nextRefreshDelay(NOW - TEN_MINUTES, NOW, fixed(ALMOST_ONE)), 1_000);
    assert.equal(nextRefreshDelay(NOW, NOW, fixed(0.5), 250), 250);
  });

  it('returns whole milliseconds', () => {
    assert.ok(Number.isInteger(nextRefreshDelay(NOW + 12_345, NOW, fixed(0.123))));
  });
});

describe('retryDelay', () => {
  const MIN = 1_000;
  const MAX = 60_000;

  it('waits between half the minimum and the minimum before the first retry', () => {
    assert.equal(retryDelay(1, MIN, MAX, fixed(0)), 500);
    assert.equal(retryDelay(1, MIN, MAX, fixed(0.5)), 750);
    assert.equal(retryDelay(1, MIN, MAX, fixed(ALMOST_ONE)), 1_000);
  });

  it('doubles the delay with each further retry', () => {
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) => retryDelay(attempt, MIN, MAX, fixed(0)));
    assert.deepEqual(delays, [500, 1_000, 2_000, 4_000, 8_000, 16_000]);
  });

  it('stops growing at the maximum', () => {
    assert.equal(retryDelay(7, MIN, MAX, fixed(ALMOST_ONE)), 60_000);
    assert.equal(retryDelay(50, MIN, MAX, fixed(0)), 30_000);
    assert.equal(retryDelay(50, MIN, MAX, fixed(ALMOST_ONE)), 60_000);
  });

  it('stays at the maximum for attempt numbers so large that 2^n overflows', () => {
    assert.equal(retryDelay(5_000, MIN, MAX, fixed(0)), 30_000);
    assert.equal(retryDelay(5_000, MIN, MAX, fixed(ALMOST_ONE)), 60_000);
  });

  it('treats attempt 0 like the first retry', () => {
    assert.equal(retryDelay(0, MIN, MAX, fixed(0.5)), 750);
  });

  it('stays between half the nominal delay and the nominal delay for any attempt and random number', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const nominal = Math.min(MAX, MIN * 2 ** (attempt - 1));
        const delay = retryDelay(attempt, MIN, MAX, fixed(r));
        assert.ok(delay >= nominal / 2 && delay <= nominal, `attempt ${attempt}: ${delay} ms is outside [${nominal / 2}, ${nominal}]`);
        assert.ok(Number.isInteger(delay));
      }),
    );
  });
});
