/**
 * A backend whose clock is off by an hour, on the `refresh-now` path: the login goes to a
 * SCRIPTED backend (no real server skews its clock on demand), behind the real stack's nginx,
 * with the built CLI spawned. Expiry must follow local time (Max-Age, or `lifetime`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { COUCH_OK_BODY } from '../helpers/fault-checks.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { rawResponse, startScriptedBackend, type Script, type ScriptedBackend } from '../helpers/scripted-backend.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

/**
 * A SCRIPTED backend whose clock is `skewMs` off: its Date header and the issue time it encodes
 * in a CouchDB-shaped AuthSession (base64url of "admin:<hex seconds>:<20 bytes>") both use it.
 */
function skewedCouch(skewMs: number, extraAttributes = ''): Script {
  return () => {
    const now = Date.now() + skewMs;
    const value = Buffer.concat([Buffer.from(`admin:${Math.floor(now / 1000).toString(16).toUpperCase()}:`), randomBytes(20)]).toString('base64url');
    assert.match(value, /^[A-Za-z0-9_-]+$/);
    return rawResponse('200 OK', [`Date: ${new Date(now).toUTCString()}`, `Set-Cookie: AuthSession=${value}; Version=1; Path=/; HttpOnly${extraAttributes}`], COUCH_OK_BODY);
  };
}

describe('a backend whose clock is off by an hour (scripted)', { skip }, () => {
  let stack: Stack;
  let scripted: ScriptedBackend;
  beforeEach(async () => {
    stack = await startStack();
    scripted = await startScriptedBackend(() => 'stall');
    stack.session.url = scripted.url;
    await stack.writeConfig();
  });
  afterEach(async () => {
    await scripted.stop();
    await stack.stop();
  });

  const secondsLeft = async (): Promise<number> => JSON.parse((await stack.cli(['status', '--json'])).stdout).sessions[0].seconds_left as number;

  for (const { skew, label } of [
    { skew: 3_600_000, label: 'ahead' },
    { skew: -3_600_000, label: 'behind' },
  ]) {
    test(`an hour ${label}, a cookie without Max-Age lasts \`lifetime\` (600 s) in local time and the next run is a no-op`, async () => {
      scripted.setScript(skewedCouch(skew));
      const run = await stack.cli(['refresh-now']);
      assert.equal(run.code, 0, run.stderr);
      const left = await secondsLeft();
      assert.ok(Math.abs(left - 600) <= 5, `seconds_left ${left}, expected 600 ± 5`);

      const requests = scripted.requests();
      const again = await stack.cli(['refresh-now']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /couch: fresh, generation 1/);
      assert.equal(scripted.requests(), requests, 'no second login');
    });

    test(`an hour ${label}, a cookie with Max-Age=120 has about 120 s left whatever the Date header says`, async () => {
      scripted.setScript(skewedCouch(skew, '; Max-Age=120'));
      const run = await stack.cli(['refresh-now']);
      assert.equal(run.code, 0, run.stderr);
      const left = await secondsLeft();
      assert.ok(Math.abs(left - 120) <= 5, `seconds_left ${left}, expected 120 ± 5`);
    });
  }
});
