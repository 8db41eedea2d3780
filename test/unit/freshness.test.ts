/**
 * Whether a run must log in again, from the state the previous run left and the include on disk.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loginReason, secondsLeft } from '../../src/state/freshness.js';
import type { SessionState } from '../../src/state/store.js';

const SHA = 'a'.repeat(64);
const ISSUED = new Date('2026-11-22T10:00:00Z');
const EXPIRES = new Date('2026-11-22T10:10:00Z');

function state(overrides: Partial<SessionState> = {}): SessionState {
  return { generation: 3, issued: ISSUED.toISOString(), expires: EXPIRES.toISOString(), include_sha256: SHA, ...overrides };
}

function at(iso: string): Date {
  return new Date(iso);
}

describe('loginReason', () => {
  it('asks for a login when there is no state yet', () => {
    assert.equal(loginReason(undefined, undefined, at('2026-11-22T10:01:00Z')), 'no-session');
  });

  it('asks for a login when no cookie has been written yet (generation 0)', () => {
    assert.equal(loginReason(state({ generation: 0 }), SHA, at('2026-11-22T10:01:00Z')), 'no-session');
  });

  it('asks for a login when the state has no expiry or no issue time', () => {
    assert.equal(loginReason(state({ expires: undefined }), SHA, at('2026-11-22T10:01:00Z')), 'no-session');
    assert.equal(loginReason(state({ issued: undefined }), SHA, at('2026-11-22T10:01:00Z')), 'no-session');
  });

  it('asks for a login when the times in the state do not parse', () => {
    assert.equal(loginReason(state({ expires: 'soon' }), SHA, at('2026-11-22T10:01:00Z')), 'no-session');
  });

  it('asks for a login when the include on disk is not the one last written', () => {
    assert.equal(loginReason(state(), 'b'.repeat(64), at('2026-11-22T10:01:00Z')), 'include-changed');
  });

  it('asks for a login when the include has been removed', () => {
    assert.equal(loginReason(state(), undefined, at('2026-11-22T10:01:00Z')), 'include-changed');
  });

  it('does not log in while more than half of the lifetime is left', () => {
    assert.equal(loginReason(state(), SHA, at('2026-11-22T10:00:00Z')), undefined);
    assert.equal(loginReason(state(), SHA, at('2026-11-22T10:04:59Z')), undefined);
  });

  it('logs in once less than half of the lifetime is left', () => {
    assert.equal(loginReason(state(), SHA, at('2026-11-22T10:05:01Z')), 'half-life');
    assert.equal(loginReason(state(), SHA, at('2026-11-22T10:09:59Z')), 'half-life');
  });

  it('logs in when the cookie has expired', () => {
    assert.equal(loginReason(state(), SHA, at('2026-11-22T10:10:00Z')), 'expired');
    assert.equal(loginReason(state(), SHA, at('2026-11-23T00:00:00Z')), 'expired');
  });
});

describe('secondsLeft', () => {
  it('counts the seconds until expiry, negative once expired', () => {
    assert.equal(secondsLeft(state(), at('2026-11-22T10:09:00Z')), 60);
    assert.equal(secondsLeft(state(), at('2026-11-22T10:11:00Z')), -60);
  });

  it('is undefined when there is no cookie', () => {
    assert.equal(secondsLeft(undefined, at('2026-11-22T10:09:00Z')), undefined);
    assert.equal(secondsLeft(state({ expires: undefined }), at('2026-11-22T10:09:00Z')), undefined);
  });
});
