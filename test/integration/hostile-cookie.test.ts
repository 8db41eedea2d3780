/**
 * A backend that answers the login with a hostile or malformed Set-Cookie. The login goes to a
 * SCRIPTED backend (no real server sends these on demand); nginx keeps proxying to the real
 * pouchdb-server with the cookie from an earlier, good login.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { rawResponse, startScriptedBackend, type ScriptedBackend } from '../helpers/scripted-backend.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

const HOSTILE: { name: string; header: string }[] = [
  { name: 'an nginx variable ($http_authorization)', header: 'Set-Cookie: AuthSession=$http_authorization; Path=/; HttpOnly' },
  { name: 'a variable hidden mid-value', header: 'Set-Cookie: AuthSession=YWRtaW4$remote_addr; Path=/' },
  { name: 'a double quote that would end the nginx string', header: 'Set-Cookie: AuthSession=abc";return 200 "owned; Path=/' },
  { name: 'a quoted value with ; inside', header: 'Set-Cookie: AuthSession="abc;def"; Path=/' },
  { name: 'a backslash', header: 'Set-Cookie: AuthSession=abc\\def; Path=/' },
  { name: 'a bare CR in the value', header: 'Set-Cookie: AuthSession=abc\rset $x 1; Path=/' },
  { name: 'a NUL byte in the value', header: 'Set-Cookie: AuthSession=abc\0def; Path=/' },
  { name: 'an 8 KB value', header: `Set-Cookie: AuthSession=${'A'.repeat(8192)}; Path=/` },
  { name: 'an empty value', header: 'Set-Cookie: AuthSession=; Path=/' },
  { name: 'two AuthSession cookies', header: 'Set-Cookie: AuthSession=YWJj; Path=/\r\nSet-Cookie: AuthSession=ZGVm; Path=/' },
];

describe('a hostile Set-Cookie from the backend', { skip }, () => {
  let stack: Stack;
  let scripted: ScriptedBackend;
  let goodInclude: Buffer;

  before(async () => {
    stack = await startStack();
    const first = await stack.cli(['refresh-now']);
    assert.equal(first.code, 0, first.stderr);
    await stack.nginx.waitForGeneration(1);
    goodInclude = await stack.includeBytes();
    scripted = await startScriptedBackend(() => rawResponse('500 Internal Server Error', []));
    stack.session.url = scripted.url;
    await stack.writeConfig();
  });
  after(async () => {
    await scripted?.stop();
    await stack?.stop();
  });

  for (const { name, header } of HOSTILE) {
    test(`is refused with exit 65 when it carries ${name}; the include stays byte for byte and nginx keeps serving`, async () => {
      scripted.setScript(() => rawResponse('200 OK', [header], '{"ok":true,"name":"admin","roles":["_admin"]}'));
      const reloads = await stack.nginx.reloads();

      const run = await stack.cli(['refresh-now', '--force']);
      assert.equal(run.code, 65, `${run.stderr}`);
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, /refused, nothing written/);
      assert.ok(!run.stderr.includes('$http_authorization') && !run.stderr.includes('owned'), 'the hostile value is not echoed');

      assert.deepEqual(await stack.includeBytes(), goodInclude);
      assert.equal(await stack.nginx.reloads(), reloads, 'nginx was not reloaded');
      assert.equal((await stack.get('/_config')).status, 200, 'nginx still serves with the previous cookie');
    });
  }
});
