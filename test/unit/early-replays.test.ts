/**
 * The head start a new credential's first replays get over its include: until they are over,
 * or for at most the cap.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EarlyReplays } from '../../src/daemon/early-replays.js';

/** Whether `promise` has settled after the event loop has turned once more. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('EarlyReplays', () => {
  it('settles at once when no replay took the credential', async () => {
    const replays = new EarlyReplays();
    assert.equal(await isSettled(replays.settled(60_000)), true);
  });

  it('waits for replays that start in the same turn as the credential arrives, and settles when the last one ends', async () => {
    const replays = new EarlyReplays();
    const waiting = replays.settled(60_000);
    // The callers woken with the credential start their replays before the next turn.
    const first = replays.start();
    const second = replays.start();
    assert.equal(await isSettled(waiting), false);
    first();
    first();
    assert.equal(await isSettled(waiting), false, 'ending the same replay twice counts once');
    second();
    assert.equal(await isSettled(waiting), true);
  });

  it('settles after the cap when a replay takes longer (a long upload cannot hold the include back)', async () => {
    const replays = new EarlyReplays();
    const end = replays.start();
    const started = Date.now();
    await replays.settled(30);
    assert.ok(Date.now() - started >= 25, 'it waited for the cap');
    end();
    assert.equal(await isSettled(replays.settled(60_000)), true, 'the count is back to zero once the replay ends');
  });
});
