/**
 * A login response body is read up to 64 KiB and no further: a backend that answers with 50 MB,
 * or with a body that never ends, costs a refused login (exit 65, one line) within seconds,
 * never the memory of the process or a hang. The backend is SCRIPTED (no real server sends
 * these on demand); nginx is real.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startScriptedBackend, type Script, type ScriptedBackend } from '../helpers/scripted-backend.js';
import { startScriptedStack, type ScriptedStack } from '../helpers/scripted-stack.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();
const COOKIE_HEADER = 'Set-Cookie: AuthSession=b3BhcXVlLXNlc3Npb24; Version=1; Path=/; HttpOnly';
const FIFTY_MB = 50 * 1024 * 1024;

/** A 200 with a valid cookie and a 50 MB body of spaces (a JSON body can be padded like that). */
function fiftyMegabytes(): Script {
  return () => Buffer.concat([Buffer.from(['HTTP/1.1 200 OK', 'Content-Type: application/json', `Content-Length: ${FIFTY_MB}`, 'Connection: close', COOKIE_HEADER, '', ''].join('\r\n')), Buffer.alloc(FIFTY_MB, 0x20)]);
}

/** A chunked body that never ends: 64 KiB chunks for as long as the socket takes them. */
function endless(status: string): Script {
  return () => (socket: Socket) => {
    socket.write([`HTTP/1.1 ${status}`, 'Content-Type: application/json', 'Transfer-Encoding: chunked', COOKIE_HEADER, '', ''].join('\r\n'));
    const chunk = Buffer.concat([Buffer.from(`${(64 * 1024).toString(16)}\r\n`), Buffer.alloc(64 * 1024, 0x20), Buffer.from('\r\n')]);
    const pump = () => {
      while (!socket.destroyed && socket.write(chunk));
    };
    socket.on('drain', pump);
    pump();
  };
}

/** A plain good login. */
const good: Script = () => ['HTTP/1.1 200 OK', 'Content-Type: application/json', 'Content-Length: 2', 'Connection: close', COOKIE_HEADER, '', '{}'].join('\r\n');

/** Peak and current resident set size of a process, in bytes (VmHWM, VmRSS). */
async function memory(pid: number): Promise<{ peak: number; now: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(status)![1]) * 1024;
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

const MB = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

describe('refresh-now with a login body that is too big (scripted login backend)', { skip }, () => {
  let stack: Stack;
  let scripted: ScriptedBackend;
  let good: Buffer;
  before(async () => {
    stack = await startStack();
    const first = await stack.cli(['refresh-now']);
    assert.equal(first.code, 0, first.stderr);
    await stack.nginx.waitForGeneration(1);
    good = await stack.includeBytes();
    scripted = await startScriptedBackend(() => 'stall');
    Object.assign(stack.session, { url: scripted.url, retries: 0, timeout: 30 });
    await stack.writeConfig();
  });
  after(async () => {
    await scripted?.stop();
    await stack?.stop();
  });

  for (const { name, script, line } of [
    { name: 'a 200 with a valid cookie and a 50 MB body', script: fiftyMegabytes(), line: new RegExp(`announced a login response body of ${FIFTY_MB} bytes, over the 65536 bytes read; a CouchDB-style /_session answers a few hundred bytes; refused, nothing written$`) },
    { name: 'a 200 with a body that never ends', script: endless('200 OK'), line: /sent a login response body over the 65536 bytes read; a CouchDB-style \/_session answers a few hundred bytes; refused, nothing written$/ },
    { name: 'a 401 with a body that never ends', script: endless('401 Unauthorized'), line: /sent a login response body over the 65536 bytes read;/ },
  ]) {
    test(`${name}: exit 65 with one line within seconds; include and nginx untouched`, async () => {
      scripted.setScript(script);
      const reloads = await stack.nginx.reloads();
      const started = Date.now();
      const run = await stack.cli(['refresh-now', '--force']);
      const took = Date.now() - started;
      assert.equal(run.code, 65, run.stderr);
      const lines = run.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, line);
      assert.ok(took < 10_000, `the run took ${took} ms`);
      assert.deepEqual(await stack.includeBytes(), good, 'the include is kept byte for byte');
      assert.equal(await stack.nginx.reloads(), reloads);
      assert.equal((await stack.get('/_config')).status, 200, 'nginx still serves with the earlier cookie');
    });
  }
});

describe('the daemon with a login body that is too big (scripted backend)', { skip }, () => {
  let scripted: ScriptedBackend;
  let stack: ScriptedStack;
  let daemon: Daemon;
  before(async () => {
    scripted = await startScriptedBackend(good);
    stack = await startScriptedStack({ backend: scripted.url, username: 'svc', password: 'big-body-secret' });
    Object.assign(stack.session, { timeout: 30 });
    await stack.writeConfig();
    daemon = await startDaemon(stack.configPath);
    await stack.nginx.waitForGeneration(1);
  });
  after(async () => {
    await daemon?.stop();
    await stack?.stop();
    await scripted?.stop();
  });

  test('a 50 MB body and an endless one each fail the login within seconds, and the daemon\'s memory stays where it was', async (t) => {
    const before = await memory(daemon.child.pid!);
    const results: string[] = [];
    for (const [name, script] of [
      ['50 MB', fiftyMegabytes()],
      ['endless', endless('200 OK')],
      ['50 MB again', fiftyMegabytes()],
    ] as const) {
      scripted.setScript(script);
      const mark = daemon.mark();
      const started = Date.now();
      // A new password file content makes the daemon log in at once.
      await writeFile(stack.passwordFile, `big-body-secret\n`);
      const error = await daemon.waitForMsgAfter(mark, /.*login response body/, 30_000);
      const took = Date.now() - started;
      assert.equal(error.code, 'ERR_COOKIE_REFUSED', name);
      assert.ok(took < 10_000, `${name}: the login failed after ${took} ms`);
      const now = await memory(daemon.child.pid!);
      results.push(`${name}: failed after ${took} ms, peak ${MB(now.peak)}, now ${MB(now.now)}`);
    }
    const after = await memory(daemon.child.pid!);
    t.diagnostic(`daemon RSS before: peak ${MB(before.peak)}, now ${MB(before.now)}; ${results.join('; ')}`);
    assert.ok(after.peak - before.peak < 16 * 1048576, `the peak grew by ${MB(after.peak - before.peak)}`);
    assert.equal(daemon.child.exitCode, null);
    assert.equal((await stack.includeBytes()).toString().match(/generation "(\d+)"/)?.[1], '1', 'the include still holds the first login');
  });
});
