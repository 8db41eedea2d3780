/**
 * The include nginx reads: its exact text, its determinism (the writer skips unchanged bytes,
 * so the same input must give the same bytes), and its refusal of values nginx would interpret.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CookieRefusedError, ExitCode } from '../../src/errors.js';
import { parseIncludeGeneration, renderEmptyInclude, renderInclude, type RenderInput } from '../../src/render/include.js';

const VALUE = 'YWRtaW46NjVBMUIyQzM6kL3d-_Zx9Q';

function sample(overrides: Partial<RenderInput> = {}): RenderInput {
  return {
    session: 'couch',
    variable: 'auth_cookie',
    cookieName: 'AuthSession',
    value: VALUE,
    generation: 7,
    // Milliseconds on purpose: the comment shows whole seconds.
    issued: new Date('2026-11-22T10:00:00.123Z'),
    expires: new Date('2026-11-22T10:10:00.987Z'),
    ...overrides,
  };
}

describe('renderInclude', () => {
  it('renders the documented include text exactly, times in ISO seconds', () => {
    assert.equal(
      renderInclude(sample()),
      [
        '# session-refresher: session "couch", generation 7. Rewritten on every refresh; do not edit.',
        '# issued 2026-11-22T10:00:00Z, expires 2026-11-22T10:10:00Z',
        `set $auth_cookie "AuthSession=${VALUE}";`,
        'set $auth_cookie_generation "7";',
        '',
      ].join('\n'),
    );
  });

  it('keeps the cookie value out of every comment line', () => {
    const comments = renderInclude(sample()).split('\n').filter((line) => line.startsWith('#'));
    assert.equal(comments.length, 2);
    for (const line of comments) assert.ok(!line.includes(VALUE), `comment leaks the cookie: ${line}`);
  });

  it('uses the configured variable and cookie name', () => {
    const text = renderInclude(sample({ variable: 'couch_session', cookieName: 'SessionId' }));
    assert.match(text, /^set \$couch_session "SessionId=YWRtaW46NjVBMUIyQzM6kL3d-_Zx9Q";$/m);
    assert.match(text, /^set \$couch_session_generation "7";$/m);
  });

  it('gives the same bytes for the same input', () => {
    const first = renderInclude(sample());
    const second = renderInclude(sample());
    assert.equal(Buffer.compare(Buffer.from(first), Buffer.from(second)), 0);
  });

  it('gives different bytes when only the generation differs', () => {
    assert.notEqual(renderInclude(sample({ generation: 7 })), renderInclude(sample({ generation: 8 })));
  });

  it('refuses a negative or fractional generation', () => {
    assert.throws(() => renderInclude(sample({ generation: -1 })), RangeError);
    assert.throws(() => renderInclude(sample({ generation: 1.5 })), RangeError);
  });

  const hostile = [
    '$http_authorization',
    'abc";\nset $auth_cookie "stolen',
    'abc"; include /etc/shadow; #',
    'a}b{c',
    'value with spaces',
    'caf\u00e9-cookie',
    'tab\there',
    'back\\slash',
  ];
  for (const value of hostile) {
    it(`refuses the hostile value ${JSON.stringify(value)} with exit code 65, without echoing it`, () => {
      assert.throws(
        () => renderInclude(sample({ value })),
        (error: unknown) => {
          assert.ok(error instanceof CookieRefusedError, `expected CookieRefusedError, got ${String(error)}`);
          assert.equal(error.exitCode, ExitCode.COOKIE_REFUSED);
          assert.equal(error.exitCode, 65);
          assert.equal(error.code, 'ERR_COOKIE_REFUSED');
          assert.ok(!error.message.includes(value), `message echoes the value: ${error.message}`);
          return true;
        },
      );
    });
  }
});

describe('renderEmptyInclude', () => {
  it('sets the variable to an empty string and records the generation', () => {
    assert.equal(
      renderEmptyInclude('couch', 'auth_cookie', 4),
      [
        '# session-refresher: session "couch", generation 4: no valid session. Rewritten on every refresh; do not edit.',
        'set $auth_cookie "";',
        'set $auth_cookie_generation "4";',
        '',
      ].join('\n'),
    );
  });
});

describe('parseIncludeGeneration', () => {
  for (const generation of [0, 7, 123456789]) {
    it(`reads back generation ${generation} from a rendered include`, () => {
      assert.equal(parseIncludeGeneration(renderInclude(sample({ generation })), 'auth_cookie'), generation);
    });
  }

  it('reads back the generation from an empty include', () => {
    assert.equal(parseIncludeGeneration(renderEmptyInclude('couch', 'auth_cookie', 12), 'auth_cookie'), 12);
  });

  it('reads the generation of the variable asked for, not another one', () => {
    const text = renderInclude(sample({ variable: 'auth_cookie', generation: 3 }));
    assert.equal(parseIncludeGeneration(text, 'other_cookie'), undefined);
    assert.equal(parseIncludeGeneration(text, 'auth'), undefined);
  });

  it('returns undefined for text session-refresher did not write', () => {
    assert.equal(parseIncludeGeneration('', 'auth_cookie'), undefined);
    assert.equal(parseIncludeGeneration('set $auth_cookie "AuthSession=x";\n', 'auth_cookie'), undefined);
    assert.equal(parseIncludeGeneration('set $auth_cookie_generation 7;\n', 'auth_cookie'), undefined);
    assert.equal(parseIncludeGeneration('# set $auth_cookie_generation "7";\n', 'auth_cookie'), undefined);
    assert.equal(parseIncludeGeneration('set $auth_cookie_generation "-7";\n', 'auth_cookie'), undefined);
  });

  it('returns undefined for a generation too large to count exactly', () => {
    assert.equal(parseIncludeGeneration('set $auth_cookie_generation "99999999999999999999";\n', 'auth_cookie'), undefined);
  });
});
