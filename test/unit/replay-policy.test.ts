/**
 * The fallback's pure decisions: what a rejected request gets, and whether a login may happen
 * now, after the floor, or not at all.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loginGate, onRejected, type RejectedRequest } from '../../src/daemon/replay-policy.js';
import type { LoopSuspicion } from '../../src/daemon/verdicts.js';

const request = (over: Partial<RejectedRequest> = {}): RejectedRequest => ({ failedGeneration: 7, generation: 7, valid: true, currentPostdatesFailure: false, backoffLeftMs: 0, looping: false, ...over });
const LOOP: LoopSuspicion = { ageMs: 40, at: 0, message: 'the backend refused a cookie it issued 40 ms earlier' };

describe('onRejected', () => {
  it('replays a request nginx sent with an older generation at once when the current cookie replaced a refused one', () => {
    assert.equal(onRejected(request({ failedGeneration: 6, currentPostdatesFailure: true })), 'stale');
    assert.equal(onRejected(request({ failedGeneration: 6, currentPostdatesFailure: true, backoffLeftMs: 5000, looping: true })), 'stale', 'a newer valid cookie beats any backoff');
  });

  it('asks the backend about a newer cookie from a routine rotation: what killed the older one may have killed it too', () => {
    assert.equal(onRejected(request({ failedGeneration: 6 })), 'probe');
  });

  it('asks the backend about the current generation\'s cookie', () => {
    assert.equal(onRejected(request()), 'probe');
    assert.equal(onRejected(request({ failedGeneration: undefined })), 'probe', 'a request without a generation is about the current cookie');
  });

  it('answers from the backoff while a failed refresh is not due again', () => {
    assert.equal(onRejected(request({ backoffLeftMs: 1 })), 'backoff');
  });

  it('replaces a missing, expired or hand-edited cookie without asking about it', () => {
    assert.equal(onRejected(request({ valid: false })), 'replace');
    assert.equal(onRejected(request({ valid: false, failedGeneration: 6 })), 'replace', 'an older generation does not help when the current cookie is not valid either');
  });

  it('replaces without a probe while the loop guard is raised: probes are unreliable across nodes with different secrets', () => {
    assert.equal(onRejected(request({ looping: true })), 'replace');
  });
});

describe('loginGate', () => {
  it('logs in at once once the floor has passed, or joins a refresh already running', () => {
    assert.deepEqual(loginGate({ floorLeftMs: 0, refreshing: false, loop: undefined, maxHoldMs: 5000 }), { kind: 'go' });
    assert.deepEqual(loginGate({ floorLeftMs: 800, refreshing: true, loop: LOOP, maxHoldMs: 5000 }), { kind: 'go' });
  });

  it('holds the request until the floor has passed, so a restart right after a login still ends in a 200', () => {
    assert.deepEqual(loginGate({ floorLeftMs: 900, refreshing: false, loop: undefined, maxHoldMs: 5000 }), { kind: 'hold', ms: 900 });
  });

  it('refuses with 503 and the time left, rounded up to whole seconds, while the loop guard is raised', () => {
    assert.deepEqual(loginGate({ floorLeftMs: 300, refreshing: false, loop: LOOP, maxHoldMs: 5000 }), { kind: 'refuse', retryAfter: 1, code: 'ERR_SESSION_LOOP' });
  });

  it('refuses rather than holding a request longer than maxHoldMs', () => {
    assert.deepEqual(loginGate({ floorLeftMs: 299_500, refreshing: false, loop: undefined, maxHoldMs: 5000 }), { kind: 'refuse', retryAfter: 300, code: 'ERR_LOGIN_FLOOR' });
  });
});
