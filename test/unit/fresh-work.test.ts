/**
 * What a pass owes a session when the daemon asks with conditions: "log in unless another run
 * already replaced the cookie that failed, or logged in moments ago". Two daemons (or a daemon
 * and a cron run) must never replace one cookie twice, yet a missing, hand-edited or expired
 * cookie is always replaced.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pendingWork, sha256, type SessionSnapshot } from '../../src/refresh/fresh.js';
import type { SessionState } from '../../src/state/store.js';

const INCLUDE = Buffer.from('set $couch_cookie "AuthSession=abc";\nset $couch_cookie_generation "5";\n');
const ISSUED = '2026-11-22T10:00:00.000Z';
const EXPIRES = '2026-11-22T10:10:00.000Z';
/** Two minutes into a ten-minute cookie: fresh, not yet past half-life. */
const NOW = new Date('2026-11-22T10:02:00Z');
const GENERATION = 5;

function secondsBefore(date: Date, seconds: number): string {
  return new Date(date.getTime() - seconds * 1000).toISOString();
}

function state(overrides: Partial<SessionState> = {}): SessionState {
  return { generation: GENERATION, issued: ISSUED, expires: EXPIRES, include_sha256: sha256(INCLUDE), last_login: ISSUED, ...overrides };
}

/** What `snapshot` would read: the state and the include as written, unless another include is given. */
function snap(s: SessionState | undefined, include: Buffer | 'missing' = INCLUDE): SessionSnapshot {
  return include === 'missing' ? { state: s, include: undefined, includeSha256: undefined } : { state: s, include, includeSha256: sha256(include) };
}

describe('sha256', () => {
  it('gives the same hex digest for a string and its bytes', () => {
    assert.equal(sha256('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(sha256(Buffer.from('abc')), sha256('abc'));
  });
});

describe('pendingWork without conditions', () => {
  it('owes nothing for a fresh cookie whose include is as written', () => {
    assert.equal(pendingWork(snap(state()), NOW), undefined);
  });

  it('owes a reload when the include was written but nginx was not reloaded', () => {
    assert.equal(pendingWork(snap(state({ reload_pending: true })), NOW), 'reload-pending');
  });

  it('reports a login past half-life ahead of an owed reload, since the login ends in a reload anyway', () => {
    assert.equal(pendingWork(snap(state({ reload_pending: true })), new Date('2026-11-22T10:06:00Z')), 'half-life');
  });
});

describe('pendingWork with force', () => {
  it('logs in even when the cookie is fresh', () => {
    assert.equal(pendingWork(snap(state()), NOW, { force: true }), 'forced');
  });

  it('logs in whatever the other conditions say', () => {
    assert.equal(pendingWork(snap(state()), NOW, { force: true, ifGenerationAtMost: GENERATION - 1 }), 'forced');
    assert.equal(pendingWork(snap(undefined, 'missing'), NOW, { force: true }), 'forced');
  });
});

describe('pendingWork with ifGenerationAtMost', () => {
  it('does nothing when another run has already replaced the generation that failed', () => {
    assert.equal(pendingWork(snap(state()), NOW, { ifGenerationAtMost: GENERATION - 1 }), undefined);
  });

  it('still owes the reload when another run replaced the cookie but nginx has not been reloaded', () => {
    assert.equal(pendingWork(snap(state({ reload_pending: true })), NOW, { ifGenerationAtMost: GENERATION - 1 }), 'reload-pending');
  });

  it('logs in when the generation that failed is the current one, though the cookie looks fresh', () => {
    assert.equal(pendingWork(snap(state()), NOW, { ifGenerationAtMost: GENERATION }), 'requested');
  });

  it('logs in when the caller saw a newer generation than the state records', () => {
    assert.equal(pendingWork(snap(state()), NOW, { ifGenerationAtMost: GENERATION + 1 }), 'requested');
  });

  it('logs in for a missing include, whatever the generation asked about', () => {
    for (const at of [0, GENERATION - 1, GENERATION]) {
      assert.equal(pendingWork(snap(state(), 'missing'), NOW, { ifGenerationAtMost: at }), 'include-changed', `ifGenerationAtMost ${at}`);
    }
  });

  it('logs in for an include edited by hand, whatever the generation asked about', () => {
    const edited = Buffer.from('set $couch_cookie "AuthSession=typed-by-hand";\n');
    for (const at of [0, GENERATION - 1, GENERATION]) {
      assert.equal(pendingWork(snap(state(), edited), NOW, { ifGenerationAtMost: at }), 'include-changed', `ifGenerationAtMost ${at}`);
    }
  });

  it('logs in for an expired cookie, whatever the generation asked about', () => {
    const later = new Date('2026-11-22T10:10:00Z');
    for (const at of [0, GENERATION - 1, GENERATION]) {
      assert.equal(pendingWork(snap(state()), later, { ifGenerationAtMost: at }), 'expired', `ifGenerationAtMost ${at}`);
    }
  });

  it('logs in when there is no session yet, whatever the generation asked about', () => {
    assert.equal(pendingWork(snap(undefined, 'missing'), NOW, { ifGenerationAtMost: 0 }), 'no-session');
    assert.equal(pendingWork(snap(state({ generation: 0 })), NOW, { ifGenerationAtMost: 0 }), 'no-session');
  });
});

describe('pendingWork asks no timer', () => {
  it('logs in for the current generation however young its cookie is: whether it is dead is the backend\'s answer', () => {
    assert.equal(pendingWork(snap(state({ last_login: secondsBefore(NOW, 0) })), NOW, { ifGenerationAtMost: GENERATION }), 'requested');
  });
});
