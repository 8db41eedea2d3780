/**
 * What is taken off a password as read (a byte order mark, one line ending) and the hint a
 * rejected login gives when the password starts or ends with whitespace, never the password.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SessionConfig } from '../../src/config/schema.js';
import { readPassword, trimPassword, whitespaceHint } from '../../src/session/password.js';

describe('trimPassword', () => {
  it('takes off a leading byte order mark and exactly one trailing LF or CRLF, nothing else', () => {
    const cases: [string, string][] = [
      ['s3cret\n', 's3cret'],
      ['s3cret\r\n', 's3cret'],
      ['\uFEFFs3cret\r\n', 's3cret'],
      ['\uFEFFs3cret', 's3cret'],
      ['s3cret', 's3cret'],
      ['s3cret\n\n', 's3cret\n'],
      ['s3cret \n', 's3cret '],
      [' s3cret', ' s3cret'],
      ['s3cret\r', 's3cret\r'],
      ['s3\ncret\n', 's3\ncret'],
    ];
    for (const [input, expected] of cases) assert.equal(trimPassword(input), expected, JSON.stringify(input));
  });
});

describe('whitespaceHint', () => {
  it('says nothing for a password without surrounding whitespace', () => {
    assert.equal(whitespaceHint('s3 cret'), undefined);
  });

  it('names where the whitespace is and which characters, without the password', () => {
    assert.equal(whitespaceHint('s3cret '), 'the password ends with 1 whitespace character(s) (space), sent as typed; remove them from the password source if they are not part of it');
    assert.match(whitespaceHint('s3cret\n')!, /ends with 1 whitespace character\(s\) \(newline\)/);
    assert.match(whitespaceHint('\ts3cret \r')!, /starts with 1 whitespace character\(s\) \(tab\) and ends with 2 whitespace character\(s\) \(space, carriage return\)/);
    assert.match(whitespaceHint('s3cret\u00a0')!, /\(no-break space\)/);
    for (const pw of ['s3cret ', ' s3cret', '\ts3cret\n']) assert.ok(!whitespaceHint(pw)!.includes('s3cret'));
  });

  it('counts an all-whitespace password once, as leading', () => {
    assert.match(whitespaceHint('   ')!, /^the password starts with 3 whitespace character\(s\) \(space\), sent/);
  });
});

describe('readPassword', () => {
  it('reads a file saved with a byte order mark and CRLF as the password typed', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'session-refresher-pw-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'pw');
    await writeFile(path, '\uFEFFs3cret\r\n');
    assert.equal(await readPassword({ name: 'couch', password_file: path } as SessionConfig), 's3cret');
  });
});
