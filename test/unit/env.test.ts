/**
 * SESSION_REFRESHER_* environment variables mapped onto the configuration, as a systemd unit or
 * a container sets them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyEnv, envNameForSession, envNameForTop } from '../../src/config/env.js';
import { validateConfig } from '../../src/config/validate.js';

function fileConfig(): Record<string, unknown> {
  return {
    state_dir: '/var/lib/session-refresher',
    nginx: { binary: '/usr/sbin/nginx' },
    sessions: [
      { name: 'couch', url: 'http://127.0.0.1:5984/', username: 'admin', password_file: '/etc/couch.pw', include: '/etc/nginx/auth/couch.conf' },
      { name: 'my-couch', url: 'http://127.0.0.1:5985/', username: 'admin', password_file: '/etc/my-couch.pw', include: '/etc/nginx/auth/my-couch.conf' },
    ],
  };
}

function sessionNamed(raw: Record<string, unknown>, name: string): Record<string, unknown> | undefined {
  const sessions = raw.sessions as Record<string, unknown>[];
  return sessions.find((s) => s.name === name);
}

describe('applyEnv', () => {
  it('sets state_dir from SESSION_REFRESHER_STATE_DIR', () => {
    const { raw, problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_STATE_DIR: '/srv/refresher' });
    assert.deepEqual(problems, []);
    assert.equal(raw.state_dir, '/srv/refresher');
  });

  it('sets nginx.pid_file from SESSION_REFRESHER_NGINX_PID_FILE, keeping the other nginx keys', () => {
    const { raw, problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_NGINX_PID_FILE: '/var/run/nginx.pid' });
    assert.deepEqual(problems, []);
    assert.deepEqual(raw.nginx, { binary: '/usr/sbin/nginx', pid_file: '/var/run/nginx.pid' });
  });

  it('configures a fleet from the environment alone: SESSION_REFRESHER_CLUSTER_URL, a password source, timings as numbers', () => {
    const { raw, problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_CLUSTER_URL: 'redis://10.0.0.5:6379', SESSION_REFRESHER_CLUSTER_PASSWORD_ENV: 'REDIS_PASSWORD', SESSION_REFRESHER_CLUSTER_LOCK_TTL: '12', SESSION_REFRESHER_CLUSTER_WAIT_TIMEOUT: '30' });
    assert.deepEqual(problems, []);
    const result = validateConfig(raw);
    assert.ok(result.ok, result.ok ? '' : result.problems.join('; '));
    assert.equal(result.config.cluster?.url, 'redis://10.0.0.5:6379');
    assert.equal(result.config.cluster?.password_env, 'REDIS_PASSWORD');
    assert.equal(result.config.cluster?.lock_ttl, 12);
    assert.equal(result.config.cluster?.wait_timeout, 30);
  });

  it('creates the nginx section when the file has none', () => {
    const { raw } = applyEnv({}, { SESSION_REFRESHER_NGINX_TEST: 'false' });
    assert.deepEqual(raw.nginx, { test: false });
  });

  it('sets password_file of the session named couch from SESSION_REFRESHER_SESSION_COUCH_PASSWORD_FILE', () => {
    const { raw, problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_SESSION_COUCH_PASSWORD_FILE: '/run/secrets/couch' });
    assert.deepEqual(problems, []);
    assert.equal((raw.sessions as unknown[]).length, 2, 'must not create a session');
    assert.equal(sessionNamed(raw, 'couch')?.password_file, '/run/secrets/couch');
    assert.equal(sessionNamed(raw, 'my-couch')?.password_file, '/etc/my-couch.pw');
  });

  it('matches a session named with "-" by writing it as "_" (my-couch -> MY_COUCH)', () => {
    const { raw, problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_SESSION_MY_COUCH_URL: 'https://db.example.org/' });
    assert.deepEqual(problems, []);
    assert.equal((raw.sessions as unknown[]).length, 2, 'must not create a session');
    assert.equal(sessionNamed(raw, 'my-couch')?.url, 'https://db.example.org/');
    assert.equal(sessionNamed(raw, 'couch')?.url, 'http://127.0.0.1:5984/');
  });

  it('reads numbers as numbers (LIFETIME=300 -> 300)', () => {
    const { raw } = applyEnv(fileConfig(), { SESSION_REFRESHER_SESSION_COUCH_LIFETIME: '300', SESSION_REFRESHER_LOCK_TIMEOUT: '5' });
    assert.equal(sessionNamed(raw, 'couch')?.lifetime, 300);
    assert.equal(raw.lock_timeout, 5);
    const result = validateConfig(raw);
    assert.ok(result.ok);
    assert.equal(result.config.sessions[0]?.lifetime, 300);
  });

  it('keeps a numeric-looking value as text for a key that takes text (USERNAME=007 -> "007")', () => {
    const { raw, problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_SESSION_COUCH_USERNAME: '007', SESSION_REFRESHER_SESSION_COUCH_COOKIE_NAME: '1' });
    assert.deepEqual(problems, []);
    const result = validateConfig(raw);
    assert.ok(result.ok, `rejected: ${result.ok ? '' : result.problems.join('; ')}`);
    const session = result.config.sessions[0];
    assert.ok(session?.kind === 'couchdb-session');
    assert.equal(session.username, '007');
    assert.equal(session.cookie_name, '1');
  });

  it('reports an unknown SESSION_REFRESHER_ variable by name', () => {
    const { problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_FOO: '1' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /unknown environment variable SESSION_REFRESHER_FOO\b/);
  });

  it('reports unknown nginx and session keys', () => {
    const { problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_NGINX_PIDFILE: '/x', SESSION_REFRESHER_SESSION_COUCH_BOGUS: '1', SESSION_REFRESHER_SESSION_URL: 'http://x/' });
    assert.equal(problems.length, 3);
  });

  it('reports SESSION_REFRESHER_SESSION_<NAME>_PASSWORD without echoing the password', () => {
    const secret = 'hunter2-Very-Secret';
    const { raw, problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_SESSION_COUCH_PASSWORD: secret });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /SESSION_REFRESHER_SESSION_COUCH_PASSWORD\b/);
    assert.ok(!problems[0]?.includes(secret));
    assert.ok(!JSON.stringify(raw).includes(secret), 'the password must not be copied into the configuration');
  });

  it('does not treat SESSION_REFRESHER_CONFIG as a configuration key', () => {
    const { raw, problems } = applyEnv(fileConfig(), { SESSION_REFRESHER_CONFIG: '/etc/session-refresher/other.yaml' });
    assert.deepEqual(problems, []);
    assert.deepEqual(raw, fileConfig());
  });

  it('ignores variables without the prefix', () => {
    const { raw, problems } = applyEnv(fileConfig(), { PATH: '/usr/bin', STATE_DIR: '/x', REFRESHER_STATE_DIR: '/y' });
    assert.deepEqual(problems, []);
    assert.deepEqual(raw, fileConfig());
  });

  it('leaves the object it was given unchanged', () => {
    const original = fileConfig();
    applyEnv(original, { SESSION_REFRESHER_STATE_DIR: '/x', SESSION_REFRESHER_SESSION_COUCH_LIFETIME: '60', SESSION_REFRESHER_NGINX_TEST: 'false' });
    assert.deepEqual(original, fileConfig());
  });

  it('builds a whole valid session from the environment alone', () => {
    const { raw, problems } = applyEnv(
      {},
      {
        SESSION_REFRESHER_SESSION_COUCH_URL: 'http://127.0.0.1:5984/',
        SESSION_REFRESHER_SESSION_COUCH_USERNAME: 'admin',
        SESSION_REFRESHER_SESSION_COUCH_PASSWORD_ENV: 'COUCH_PASSWORD',
        SESSION_REFRESHER_SESSION_COUCH_INCLUDE: '/etc/nginx/auth/couch.conf',
      },
    );
    assert.deepEqual(problems, []);
    const result = validateConfig(raw);
    assert.ok(result.ok, `rejected: ${result.ok ? '' : result.problems.join('; ')}`);
    assert.equal(result.config.sessions.length, 1);
    const only = result.config.sessions[0];
    assert.ok(only?.kind === 'couchdb-session');
    assert.equal(only?.name, 'couch');
    assert.equal(only?.url, 'http://127.0.0.1:5984/');
    assert.equal(only?.username, 'admin');
    assert.equal(only?.password_env, 'COUCH_PASSWORD');
    assert.equal(only?.include, '/etc/nginx/auth/couch.conf');
  });

  it('names a session created from the environment in lowercase with "-" for "_"', () => {
    const { raw } = applyEnv({}, { SESSION_REFRESHER_SESSION_MY_COUCH_URL: 'http://127.0.0.1:5984/' });
    assert.deepEqual(raw.sessions, [{ name: 'my-couch', url: 'http://127.0.0.1:5984/' }]);
  });

  it('understands the variable names it gives for top-level and session keys', () => {
    assert.equal(envNameForTop('state_dir'), 'SESSION_REFRESHER_STATE_DIR');
    assert.equal(envNameForSession('my-couch', 'password_file'), 'SESSION_REFRESHER_SESSION_MY_COUCH_PASSWORD_FILE');
    const env = { [envNameForSession('my-couch', 'password_file')]: '/run/pw', [envNameForTop('state_dir')]: '/s' };
    const { raw, problems } = applyEnv(fileConfig(), env);
    assert.deepEqual(problems, []);
    assert.equal(sessionNamed(raw, 'my-couch')?.password_file, '/run/pw');
    assert.equal(raw.state_dir, '/s');
  });
});
