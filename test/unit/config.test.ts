/**
 * Validation of the configuration object: defaults, unknown keys, secrets never echoed, and
 * every problem reported at once with where it is and what was received.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/validate.js';

function session(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'couch', url: 'http://127.0.0.1:5984/', username: 'admin', password_file: '/etc/session-refresher/couch.password', include: '/etc/nginx/auth/couch.conf', ...overrides };
}

/** The problems of an invalid configuration; fails the test when it validates. */
function problemsOf(raw: unknown): string[] {
  const result = validateConfig(raw);
  assert.equal(result.ok, false, 'expected the configuration to be rejected');
  return result.ok ? [] : result.problems;
}

describe('validateConfig', () => {
  it('gives a minimal configuration every default', () => {
    const result = validateConfig({ sessions: [session()] });
    assert.ok(result.ok, `rejected: ${result.ok ? '' : result.problems.join('; ')}`);
    // Key by key rather than one deepEqual, so that adding a new key with a default does not
    // break this test; each default below is documented and relied on.
    const { config } = result;
    assert.equal(config.state_dir, '/var/lib/session-refresher');
    assert.equal(config.lock_timeout, 30);
    assert.equal(config.log_level, 'info');
    assert.equal(config.nginx.binary, 'nginx');
    assert.equal(config.nginx.test, true);
    assert.equal(config.nginx.pid_file, '/run/nginx.pid');
    assert.equal(config.nginx.command_timeout, 30);
    assert.equal(config.nginx.reload_command, undefined);
    assert.equal(config.sessions.length, 1);
    const only = config.sessions[0];
    // A session that names no kind is a CouchDB session, as every config before kinds was.
    assert.ok(only?.kind === 'couchdb-session');
    assert.equal(only?.name, 'couch');
    assert.equal(only?.url, 'http://127.0.0.1:5984/');
    assert.equal(only?.username, 'admin');
    assert.equal(only?.password_file, '/etc/session-refresher/couch.password');
    assert.equal(only?.include, '/etc/nginx/auth/couch.conf');
    assert.equal(only?.variable, 'auth_cookie');
    assert.equal(only?.cookie_name, 'AuthSession');
    assert.equal(only?.lifetime, 600);
    assert.equal(only?.timeout, 10);
    assert.equal(only?.retries, 2);
    assert.equal(only?.group, undefined);
  });

  it('keeps values that are given instead of the defaults', () => {
    const result = validateConfig({ state_dir: '/srv/state', lock_timeout: 5, nginx: { test: false, pid_file: '/var/run/n.pid' }, sessions: [session({ lifetime: 300, variable: 'couch_cookie' })] });
    assert.ok(result.ok);
    assert.equal(result.config.state_dir, '/srv/state');
    assert.equal(result.config.lock_timeout, 5);
    assert.equal(result.config.nginx.test, false);
    assert.equal(result.config.nginx.pid_file, '/var/run/n.pid');
    assert.equal(result.config.nginx.binary, 'nginx');
    assert.equal(result.config.sessions[0]?.lifetime, 300);
    assert.equal(result.config.sessions[0]?.variable, 'couch_cookie');
  });

  it('rejects an unknown key, naming its full path with the session name', () => {
    const problems = problemsOf({ sessions: [session({ bogus: 1 })] });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /unknown key sessions\[0\] \(couch\)\.bogus\b/);
  });

  it('rejects unknown keys at the top level and in nginx', () => {
    const text = problemsOf({ sesions: [], nginx: { pidfile: '/run/nginx.pid' }, sessions: [session()] }).join('\n');
    assert.match(text, /unknown key sesions\b/);
    assert.match(text, /unknown key nginx\.pidfile\b/);
  });

  it('rejects a literal password key without echoing its value', () => {
    const secret = 'hunter2-Very-Secret';
    const problems = problemsOf({ sessions: [session({ password: secret })] });
    assert.match(problems.join('\n'), /sessions\[0\] \(couch\)\.password: a literal password is not accepted/);
    for (const problem of problems) assert.ok(!problem.includes(secret), `problem echoes the password: ${problem}`);
  });

  it('does not echo a literal password even when the session has other problems', () => {
    const secret = 'hunter2-Very-Secret';
    const problems = problemsOf({ state_dir: 'relative', sessions: [session({ password: secret, password_file: undefined, url: 'nope' })] });
    assert.ok(problems.length >= 2);
    for (const problem of problems) assert.ok(!problem.includes(secret), `problem echoes the password: ${problem}`);
  });

  it('does not echo a password pasted into password_file or password_env', () => {
    const secret = 'hunter2 Very Secret';
    const problems = [...problemsOf({ sessions: [session({ password_file: secret })] }), ...problemsOf({ sessions: [session({ password_file: undefined, password_env: secret })] })];
    assert.equal(problems.length, 2);
    assert.match(problems[0] ?? '', /password_file/);
    assert.match(problems[1] ?? '', /password_env/);
    for (const problem of problems) assert.ok(!problem.includes(secret), `problem echoes the password: ${problem}`);
  });

  it('does not echo a password embedded in a rejected url', () => {
    const problems = problemsOf({ sessions: [session({ url: 'ftp://admin:s3cret-Pass@db.example.org/' })] });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^sessions\[0\] \(couch\)\.url: must be an http:\/\/ or https:\/\/ URL/);
    assert.ok(!problems[0]?.includes('s3cret-Pass'), `problem echoes the password: ${problems[0]}`);
  });

  it('refuses credentials inside an http url and does not echo them', () => {
    const problems = problemsOf({ sessions: [session({ url: 'http://admin:s3cret-Pass@db.example.org/' })] });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /url: must not contain credentials/);
    assert.ok(!problems[0]?.includes('s3cret-Pass'));
  });

  it('reports several problems in one result', () => {
    const problems = problemsOf({ state_dir: 'relative/dir', lock_timeout: 'ten', sessions: [session({ url: 'ftp://example.org/', lifetime: -5 })] });
    const text = problems.join('\n');
    assert.match(text, /^state_dir: /m);
    assert.match(text, /^lock_timeout: /m);
    assert.match(text, /^sessions\[0\] \(couch\)\.url: /m);
    assert.match(text, /^sessions\[0\] \(couch\)\.lifetime: /m);
    assert.equal(problems.length, 4);
  });

  it('includes the received value in a wrong-type message', () => {
    const problems = problemsOf({ sessions: [session({ lifetime: 'ten minutes' })] });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^sessions\[0\] \(couch\)\.lifetime: .*number.*received "ten minutes"/);
  });

  it('includes the received value when a value is out of range', () => {
    const problems = problemsOf({ nginx: { command_timeout: -1 }, sessions: [session()] });
    assert.match(problems.join('\n'), /nginx\.command_timeout: .*-1/);
  });

  it('reports a missing required key as required', () => {
    const problems = problemsOf({ sessions: [session({ url: undefined })] });
    assert.deepEqual(problems, ['sessions[0] (couch).url: is required']);
  });

  it('requires at least one session', () => {
    assert.match(problemsOf({}).join('\n'), /^sessions: is required$/m);
    assert.match(problemsOf({ sessions: [] }).join('\n'), /^sessions: .*at least one session/m);
  });

  it('reports a repeated session name', () => {
    const problems = problemsOf({ sessions: [session(), session({ include: '/etc/nginx/auth/other.conf' })] });
    assert.deepEqual(problems, ['sessions[1] (couch).name: repeats the name of sessions[0] (received "couch")']);
  });

  it('reports two sessions writing the same include', () => {
    const problems = problemsOf({ sessions: [session(), session({ name: 'other' })] });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^sessions\[1\] \(other\)\.include: is also the include of sessions\[0\]/);
  });

  it('reports a session without a password source', () => {
    const problems = problemsOf({ sessions: [session({ password_file: undefined })] });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^sessions\[0\] \(couch\): needs a password source/);
  });

  it('reports a session with two password sources', () => {
    const problems = problemsOf({ sessions: [session({ password_env: 'COUCH_PASSWORD' })] });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^sessions\[0\] \(couch\): has more than one password source/);
  });

  it('accepts each single password source', () => {
    for (const source of [{ password_file: '/run/pw' }, { password_env: 'COUCH_PASSWORD' }, { password_credential: 'couch.password' }]) {
      const result = validateConfig({ sessions: [session({ password_file: undefined, ...source })] });
      assert.ok(result.ok, `rejected ${JSON.stringify(source)}: ${result.ok ? '' : result.problems.join('; ')}`);
    }
  });

  it('reports a relative include path', () => {
    const problems = problemsOf({ sessions: [session({ include: 'auth/couch.conf' })] });
    assert.deepEqual(problems, ['sessions[0] (couch).include: must be an absolute path (received "auth/couch.conf")']);
  });

  it('reports a variable name that nginx would not accept', () => {
    const problems = problemsOf({ sessions: [session({ variable: '$auth_cookie' })] });
    assert.match(problems.join('\n'), /sessions\[0\] \(couch\)\.variable: must be an nginx variable name/);
  });
  it('refuses a lifetime over 30 days and a number of seconds no timer can wait, naming the limit', () => {
    const problems = problemsOf({ lock_timeout: 3e6, daemon: { replay_timeout: 1e12 }, sessions: [session({ lifetime: 2_592_001, timeout: 1e9 })] });
    const text = problems.join('\n');
    assert.match(text, /^sessions\[0\] \(couch\)\.lifetime: must be at most 2592000 seconds \(30 days\)/m);
    assert.match(text, /^sessions\[0\] \(couch\)\.timeout: must be at most 2147483 seconds/m);
    assert.match(text, /^daemon\.replay_timeout: must be at most 2147483 seconds/m);
    assert.match(text, /^lock_timeout: must be at most 2147483 seconds/m);
    assert.ok(validateConfig({ sessions: [session({ lifetime: 2_592_000, timeout: 2_147_483 })] }).ok, 'the limits themselves are allowed');
  });
});
