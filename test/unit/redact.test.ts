/**
 * Secrets in what a backend sends back: a reason that echoes the login request must come out
 * without the password in any spelling (as typed, form-encoded, JSON-escaped, base64 alone or
 * inside a Basic header or any longer base64 text).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backendReason } from '../../src/session/login.js';
import { REDACTED, redact, secretSpellings } from '../../src/session/redact.js';

const USER = 'svc-nginx';
const PASSWORD = 'Pa55 w0rd+&=/?é:ü%"\\x';

/** The spellings a careless backend or WAF would echo. */
function echoes(user: string, password: string): string[] {
  const form = new URLSearchParams({ name: user, password }).toString();
  const basic = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  return [
    password,
    form,
    form.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    `name=${encodeURIComponent(user)}&password=${encodeURIComponent(password)}`,
    JSON.stringify({ name: user, password }),
    basic,
    `Authorization: ${basic}`,
    Buffer.from(`POST /_session HTTP/1.1\r\n\r\n${form}`).toString('base64'),
    Buffer.from(`x${password}`).toString('base64'),
    Buffer.from(`xy${password}`).toString('base64url'),
  ];
}

/** Every way the password could still be read from `text`. */
function leaks(text: string, password: string): string[] {
  const found: string[] = [];
  if (text.includes(password)) found.push('raw');
  if (text.includes(new URLSearchParams({ p: password }).toString().slice(2))) found.push('form-encoded');
  if (text.includes(encodeURIComponent(password))) found.push('uri-encoded');
  if (text.includes(Buffer.from(password).toString('base64').slice(0, -4))) found.push('base64');
  if (text.includes(Buffer.from(`${USER}:${password}`).toString('base64'))) found.push('basic');
  return found;
}

describe('secretSpellings and redact', () => {
  it('remove the password from every echo of the login request, whatever the spelling', () => {
    const spellings = secretSpellings(USER, PASSWORD);
    for (const echo of echoes(USER, PASSWORD)) {
      const text = `rejected: ${echo} (end)`;
      const out = redact(text, spellings);
      assert.deepEqual(leaks(out, PASSWORD), [], `leaked from ${JSON.stringify(echo)}: ${out}`);
      assert.ok(out.includes(REDACTED), `nothing was redacted in ${JSON.stringify(echo)}`);
      assert.ok(out.startsWith('rejected: ') && out.endsWith(' (end)'), 'the rest of the text is kept');
    }
  });

  it('keep text that holds no secret exactly as it is', () => {
    const text = 'Name or password is incorrect.';
    assert.equal(redact(text, secretSpellings(USER, PASSWORD)), text);
  });

  it('have nothing to remove for an empty password', () => {
    assert.deepEqual(secretSpellings(USER, ''), []);
  });
});

describe('backendReason', () => {
  it('quotes the reason of a JSON body with the password removed, even in base64 and form-encoded', () => {
    const form = new URLSearchParams({ name: USER, password: PASSWORD }).toString();
    const body = JSON.stringify({ error: 'unauthorized', reason: `bad login ${form} via Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` });
    const reason = backendReason(body, secretSpellings(USER, PASSWORD));
    assert.match(reason, /^bad login name=svc-nginx&password=\[redacted\] via Basic \[redacted\]$/);
  });

  it('redacts before cutting to 200 characters, so no prefix of the password survives at the cut', () => {
    for (let pad = 180; pad < 200; pad++) {
      const reason = backendReason(JSON.stringify({ reason: `${'a'.repeat(pad)}${PASSWORD}` }), secretSpellings(USER, PASSWORD));
      assert.ok(!reason.includes(PASSWORD.slice(0, 4)), `pad ${pad}: ${reason}`);
    }
  });

  it('puts control characters out as spaces, so a reason stays on one line', () => {
    assert.equal(backendReason(JSON.stringify({ reason: 'a\nb\r\nc\u0000d' }), []), 'a b  c d');
  });

  it('says nothing for a body that is not JSON (an HTML error page, a binary body)', () => {
    assert.equal(backendReason(`<html>${PASSWORD}</html>`, secretSpellings(USER, PASSWORD)), '');
  });
});
