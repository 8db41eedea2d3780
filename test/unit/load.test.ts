/**
 * Loading the configuration from a real YAML file, layered with the environment and flags.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { parseYamlConfig } from '../../src/config/yaml-file.js';
import { ConfigError, ExitCode } from '../../src/errors.js';

const VALID = `# a minimal configuration
state_dir: /srv/from-file
sessions:
  - name: couch
    url: http://127.0.0.1:5984/
    username: admin
    password_file: /etc/session-refresher/couch.password
    include: /etc/nginx/auth/couch.conf
`;

async function configFile(t: TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'session-refresher-load-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'config.yaml');
  await writeFile(path, text);
  return path;
}

/** The ConfigError loadConfig throws; fails the test when it does not throw one. */
function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  it('loads a valid file and says where it came from', async (t) => {
    const path = await configFile(t, VALID);
    const loaded = loadConfig({ path, env: {} });
    assert.equal(loaded.source, path);
    assert.equal(loaded.config.state_dir, '/srv/from-file');
    assert.equal(loaded.config.sessions[0]?.name, 'couch');
    assert.equal(loaded.config.sessions[0]?.lifetime, 600);
  });

  it('reports a YAML syntax error with its line number', async (t) => {
    const path = await configFile(t, 'state_dir: /srv/x\nsessions:\n  - name: couch\n    url: http://x: y\n    username: admin\n');
    const error = configErrorOf(() => loadConfig({ path, env: {} }));
    assert.equal(error.exitCode, ExitCode.CONFIG);
    assert.ok(
      error.problems.some((p) => /^YAML syntax at line 4\b/.test(p)),
      `no problem names line 4: ${JSON.stringify(error.problems)}`,
    );
  });

  it('reports a repeated key with its line number', async (t) => {
    const path = await configFile(t, `${VALID}state_dir: /srv/again\n`);
    const error = configErrorOf(() => loadConfig({ path, env: {} }));
    assert.ok(
      error.problems.some((p) => /line 9\b/.test(p)),
      `no problem names line 9: ${JSON.stringify(error.problems)}`,
    );
  });

  it('reports a file that is a list, not a mapping', async (t) => {
    const path = await configFile(t, '- a\n- b\n');
    const error = configErrorOf(() => loadConfig({ path, env: {} }));
    assert.match(error.problems.join('\n'), /must be a YAML mapping/);
  });

  it('lets the environment override the file', async (t) => {
    const path = await configFile(t, VALID);
    const loaded = loadConfig({ path, env: { SESSION_REFRESHER_STATE_DIR: '/srv/from-env', SESSION_REFRESHER_SESSION_COUCH_LIFETIME: '300' } });
    assert.equal(loaded.config.state_dir, '/srv/from-env');
    assert.equal(loaded.config.sessions[0]?.lifetime, 300);
  });

  it('lets flags override the environment', async (t) => {
    const path = await configFile(t, VALID);
    const loaded = loadConfig({ path, env: { SESSION_REFRESHER_STATE_DIR: '/srv/from-env' }, flags: { stateDir: '/srv/from-flag', logLevel: 'debug' } });
    assert.equal(loaded.config.state_dir, '/srv/from-flag');
    assert.equal(loaded.config.log_level, 'debug');
  });

  it('reads the file named by SESSION_REFRESHER_CONFIG when no path is given', async (t) => {
    const path = await configFile(t, VALID);
    const loaded = loadConfig({ env: { SESSION_REFRESHER_CONFIG: path } });
    assert.equal(loaded.source, path);
    assert.equal(loaded.config.state_dir, '/srv/from-file');
  });

  it('throws ConfigError with exit code 78 naming a missing explicit file', async (t) => {
    const path = join(await configFile(t, ''), '..', 'missing.yaml');
    const error = configErrorOf(() => loadConfig({ path, env: {} }));
    assert.equal(error.exitCode, ExitCode.CONFIG);
    assert.equal(error.exitCode, 78);
    assert.ok(error.message.includes(path), error.message);
  });

  it('throws ConfigError for a missing file named by SESSION_REFRESHER_CONFIG', async (t) => {
    const path = join(await configFile(t, ''), '..', 'missing.yaml');
    const error = configErrorOf(() => loadConfig({ env: { SESSION_REFRESHER_CONFIG: path } }));
    assert.equal(error.exitCode, 78);
    assert.ok(error.message.includes(path), error.message);
  });

  it('reports problems from the file and the environment together', async (t) => {
    const path = await configFile(t, VALID.replace('state_dir: /srv/from-file', 'state_dir: relative\nbogus: 1'));
    const error = configErrorOf(() => loadConfig({ path, env: { SESSION_REFRESHER_FOO: 'x' } }));
    const text = error.problems.join('\n');
    assert.match(text, /SESSION_REFRESHER_FOO/);
    assert.match(text, /unknown key bogus/);
    assert.match(text, /^state_dir: /m);
  });

  it('never echoes a literal password from the file', async (t) => {
    const secret = 'hunter2-Very-Secret';
    const path = await configFile(t, VALID.replace('    username: admin\n', `    username: admin\n    password: ${secret}\n`));
    const error = configErrorOf(() => loadConfig({ path, env: {} }));
    assert.match(error.message, /literal password is not accepted/);
    assert.ok(!error.message.includes(secret), error.message);
  });

  it('lists the first 20 problems and counts the rest in one line, one problem per unknown key', async (t) => {
    const keys = Array.from({ length: 3000 }, (_, i) => `k${i}: ${i}`).join('\n');
    const path = await configFile(t, `${VALID}${keys}\n`);
    const error = configErrorOf(() => loadConfig({ path, env: {} }));
    assert.equal(error.problems.length, 3000);
    assert.match(error.message, /, 3000 problems, the first 20: unknown key k0: remove it or check its spelling; unknown key k1: /);
    assert.match(error.message, /; unknown key k19: remove it or check its spelling; and 2980 more$/);
    assert.ok(!error.message.includes('k20:'), 'the 21st problem is counted, not listed');
    assert.ok(!error.message.includes('\n'), 'one line');
  });

  it('refuses a file over 64 KiB before parsing it, naming the limit, at once', async (t) => {
    const path = await configFile(t, `${VALID}${Array.from({ length: 200_000 }, (_, i) => `k${i}: ${i}`).join('\n')}\n`);
    const started = performance.now();
    const error = configErrorOf(() => loadConfig({ path, env: {} }));
    assert.ok(performance.now() - started < 500, `took ${performance.now() - started} ms`);
    assert.match(error.message, /: it is \d+ bytes, over the 65536-byte limit for this file; /);
  });

  it('cuts a key or value that would make the line huge, and shows odd keys quoted', async (t) => {
    const path = await configFile(t, `${VALID.replace('state_dir: /srv/from-file\n', '')}"${'x'.repeat(900)}\\nz": 1\nstate_dir: ${'r'.repeat(5000)}\n`);
    const error = configErrorOf(() => loadConfig({ path, env: {} }));
    assert.ok(error.message.length < 1000, `${error.message.length} characters`);
    assert.match(error.message, /unknown key "x{63}x"…: remove it/);
    assert.match(error.message, /state_dir: must be an absolute path \(received "r{79}…\)/);
  });

  it('reports an alias bomb as a problem instead of expanding it or crashing', async (t) => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]'].join('\n');
    const path = await configFile(t, `${VALID}${bomb}\n`);
    const error = configErrorOf(() => loadConfig({ path, env: {} }));
    assert.match(error.message, /YAML: .*alias/i);
  });
});

describe('parseYamlConfig', () => {
  it('still names a repeated key and its line, in a nested mapping too', () => {
    const problems: string[] = [];
    assert.deepEqual(parseYamlConfig('a: 1\nb:\n  c: 1\n  c: 2\na: 3\n', problems), {});
    assert.deepEqual(problems.sort(), ['YAML: the key a is repeated at line 5, column 1; keep one', 'YAML: the key c is repeated at line 4, column 3; keep one']);
  });
});
