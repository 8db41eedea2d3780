/**
 * A backend (or a WAF in front of it) that echoes the login request into its error reason must
 * not carry the password out: not in the error line, the state file, `status`, the daemon's log,
 * /healthz, /metrics, nor the 503 that nginx hands to a client, in any spelling (as typed,
 * form-encoded, JSON-escaped, base64 in the Basic header). The client's 503 says nothing of the
 * backend at all: a generic reason and a request id that matches the daemon's log line.
 *
 * The backend is SCRIPTED (no real server echoes credentials on demand); nginx is real, built
 * from the shipped snippets, and proxies to the same scripted backend so a request reaches the
 * daemon's fallback.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { startScriptedBackend, type ScriptedBackend, type ScriptedRequest } from '../helpers/scripted-backend.js';
import { startScriptedStack, type ScriptedStack } from '../helpers/scripted-stack.js';

const skip = skipWithoutNginx();
const USER = 'svc';
const PASSWORD = 'Echo me 4ever+&=/é"\\ok';

/** Every spelling of the password a leak could take. */
const SPELLINGS: Record<string, string> = {
  raw: PASSWORD,
  'form-encoded': new URLSearchParams({ p: PASSWORD }).toString().slice(2),
  'uri-encoded': encodeURIComponent(PASSWORD),
  'json-escaped': JSON.stringify(PASSWORD).slice(1, -1),
  'base64 (Basic)': Buffer.from(`${USER}:${PASSWORD}`).toString('base64'),
  base64: Buffer.from(PASSWORD).toString('base64').replace(/=+$/, ''),
};

function assertNoPassword(where: string, text: string): void {
  for (const [form, spelling] of Object.entries(SPELLINGS)) assert.ok(!text.includes(spelling), `${where} holds the password (${form}):\n${text}`);
}

/** A JSON answer whose reason repeats the request body and its Authorization header, as a careless WAF would. */
function echo(status: string) {
  return (request: ScriptedRequest): string => {
    const authorization = /^authorization: (.*)$/im.exec(request.headers)?.[1] ?? '-';
    const isLogin = request.method === 'POST' && request.path === '/_session';
    const body = JSON.stringify(
      isLogin ? { error: 'denied', reason: `denied body=${request.body} auth=${authorization} all=${request.headers}` } : { error: 'unauthorized', reason: 'You are not a server admin.' },
    );
    const head = isLogin ? status : '401 Unauthorized';
    return [`HTTP/1.1 ${head}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', 'WWW-Authenticate: Basic realm="couch"', '', body].join('\r\n');
  };
}

describe('a backend that echoes the login request into its reason (scripted)', { skip }, () => {
  let backend: ScriptedBackend;
  let stack: ScriptedStack;
  let daemon: Daemon | undefined;
  const outputs: [string, string][] = [];

  before(async () => {
    backend = await startScriptedBackend(echo('401 Unauthorized'));
    stack = await startScriptedStack({ backend: backend.url, username: USER, password: PASSWORD });
  });
  after(async () => {
    await daemon?.stop();
    await stack?.stop();
    await backend?.stop();
  });

  test('refresh-now: a 401 and a 500 that echo the form body and the Basic header print one line each, with the password redacted', async () => {
    const requests = backend.requests();
    const rejected = await stack.cli(['refresh-now', '--force']);
    assert.equal(rejected.code, 77, rejected.stderr);
    assert.equal(backend.requests() - requests, 2, 'the form login and the Basic retry both reached the backend');
    const line = rejected.stderr.trimEnd();
    assert.equal(line.split('\n').length, 1, line);
    assert.match(line, /rejected the login for user "svc" \(401: "denied body=name=svc&password=\[redacted\] auth=Basic \[redacted\] all=/, 'the reason is quoted, with the password removed');
    outputs.push(['refresh-now 401 stdout', rejected.stdout], ['refresh-now 401 stderr', rejected.stderr]);

    backend.setScript(echo('500 Internal Server Error'));
    const failing = await stack.cli(['refresh-now', '--force']);
    assert.equal(failing.code, 69, failing.stderr);
    assert.match(failing.stderr, /answered 500: "denied body=name=svc&password=\[redacted\] auth=- all=/);
    outputs.push(['refresh-now 500 stdout', failing.stdout], ['refresh-now 500 stderr', failing.stderr]);

    const statusJson = await stack.cli(['status', '--json']);
    assert.match(JSON.parse(statusJson.stdout).sessions[0].last_error.message, /\[redacted\]/);
    outputs.push(['status --json', statusJson.stdout], ['status', (await stack.cli(['status'])).stdout], ['state file', await readFile(join(stack.stateDir, 'couch.json'), 'utf8')]);
    for (const [where, text] of outputs) assertNoPassword(where, text);
  });

  test('daemon: the client gets a 503 with a generic reason and a request id found in the log; log, state, status, /healthz and /metrics hold no password', async () => {
    backend.setScript(echo('401 Unauthorized'));
    daemon = await startDaemon(stack.configPath);
    await daemon.waitForMsg(/.*rejected the login for user/);

    const res = await fetch(`${stack.nginx.url}/db/doc`);
    const text = await res.text();
    assert.equal(res.status, 503, text);
    const body = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['error', 'reason', 'request_id']);
    assert.equal(body.error, 'session_unavailable');
    assert.match(String(body.request_id), /^[0-9a-f-]{36}$/);
    for (const detail of [backend.url, new URL(backend.url).host, USER, 'denied', 'ERR_', 'rejected']) assert.ok(!text.includes(detail), `the client's body names ${detail}: ${text}`);

    const logged = await daemon.waitForMsg(/fallback: no session to replay with; answering 503/);
    assert.equal(logged.request_id, body.request_id, 'the request id leads to the daemon\'s log line');
    assert.match(String(logged.reason), /rejected the login for user "svc" .*password=\[redacted\]/, 'the log keeps the backend\'s words, redacted');

    const admin = stack.admin;
    const health = await fetch(`${admin}/healthz`);
    assert.equal(health.status, 503);
    outputs.push(
      ['client body', text],
      ['/healthz', await health.text()],
      ['/metrics', await (await fetch(`${admin}/metrics`)).text()],
      ['state file (daemon)', await readFile(join(stack.stateDir, 'couch.json'), 'utf8')],
      ['status --json (daemon)', (await stack.cli(['status', '--json'])).stdout],
    );
    assert.equal(await daemon.stop(), 0);
    outputs.push(['daemon log', daemon.log.lines.join('\n')]);
    for (const [where, output] of outputs) assertNoPassword(where, output);
  });
});
