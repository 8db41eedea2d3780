/**
 * Validation of the `cluster:` section: the minimal form from the docs, its defaults, and the
 * problems it refuses (each named, the password never echoed), all reported at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/validate.js';

const session = { name: 'couch', url: 'http://127.0.0.1:5984/', username: 'admin', password_file: '/etc/session-refresher/couch.password', include: '/etc/nginx/auth/couch.conf' };

function problemsOf(cluster: unknown): string[] {
  const result = validateConfig({ sessions: [session], cluster });
  assert.equal(result.ok, false, 'expected the configuration to be rejected');
  return result.ok ? [] : result.problems;
}

describe('the cluster section', () => {
  it('is absent unless configured, so a node works alone as before', () => {
    const result = validateConfig({ sessions: [session] });
    assert.ok(result.ok);
    assert.equal(result.config.cluster, undefined);
  });

  it('accepts the minimal form {url} and fills every default', () => {
    const result = validateConfig({ sessions: [session], cluster: { url: 'redis://10.0.0.5:6379' } });
    assert.ok(result.ok, result.ok ? '' : result.problems.join('; '));
    assert.deepEqual(result.config.cluster, { url: 'redis://10.0.0.5:6379', key_prefix: 'session-refresher', lock_ttl: 10, poll_interval: 5, wait_timeout: 15, command_timeout: 1 });
  });

  it('accepts TLS with a CA file, an ACL user and one password source', () => {
    const result = validateConfig({ sessions: [session], cluster: { url: 'rediss://redis.internal:6380/2', ca_file: '/etc/ssl/redis-ca.pem', username: 'refresher', password_env: 'REDIS_PASSWORD', key_prefix: 'edge.eu', node_id: 'nginx-3' } });
    assert.ok(result.ok, result.ok ? '' : result.problems.join('; '));
  });

  it('accepts Sentinel (the primary\'s name and the sentinels) instead of url', () => {
    const result = validateConfig({ sessions: [session], cluster: { sentinel: { name: 'mymaster', nodes: ['10.0.0.5:26379', '[fd00::6]:26379'] }, password_file: '/etc/session-refresher/redis.password' } });
    assert.ok(result.ok, result.ok ? '' : result.problems.join('; '));
    assert.deepEqual(result.config.cluster?.sentinel, { name: 'mymaster', nodes: ['10.0.0.5:26379', '[fd00::6]:26379'] });
  });

  it('needs exactly one of url and sentinel, and refuses TLS through Sentinel', () => {
    assert.deepEqual(problemsOf({}), ['cluster: needs url (redis://host:port) or sentinel (name and nodes)']);
    assert.deepEqual(problemsOf({ url: 'redis://10.0.0.5:6379', sentinel: { name: 'm', nodes: ['10.0.0.5:26379'] } }), ['cluster: has both url and sentinel: keep one']);
    const problems = problemsOf({ sentinel: { name: 'm', nodes: ['10.0.0.5'] }, ca_file: '/etc/ca.pem' });
    assert.ok(problems.some((p) => /^cluster\.sentinel\.nodes\[0\]: must be host:port/.test(p)), problems.join('; '));
    assert.ok(problems.some((p) => /^cluster\.ca_file: is for a rediss:\/\/ url; TLS through Sentinel is not supported/.test(p)), problems.join('; '));
  });

  it('refuses a URL that is not redis:// or rediss://, naming the key', () => {
    assert.deepEqual(problemsOf({ url: 'http://10.0.0.5:6379' }), ['cluster.url: must be a redis:// or rediss:// URL (received "http://10.0.0.5:6379")']);
  });

  it('refuses a password in the URL without echoing it', () => {
    const problems = problemsOf({ url: 'redis://:hunter2@10.0.0.5:6379' });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^cluster\.url: must not contain credentials; use username and a password source/);
    assert.ok(!problems.join('').includes('hunter2'));
  });

  it('reports every problem at once: two password sources, a CA without TLS, a wait shorter than the lock, a bad prefix, an unknown key', () => {
    const problems = problemsOf({ url: 'redis://10.0.0.5:6379', password_file: '/run/p', password_env: 'P', ca_file: '/etc/ca.pem', lock_ttl: 20, key_prefix: 'a{b}', sentinels: [] });
    assert.deepEqual(problems.sort(), [
      'cluster.ca_file: is only used with a rediss:// (TLS) url',
      'cluster.key_prefix: must be 1-64 letters, digits, "_", ".", ":" or "-" (received "a{b}")',
      'cluster.wait_timeout: must be longer than lock_ttl (20s), or a node gives up waiting while the login it waits for still holds the lock (received 15)',
      'cluster: has more than one password source: keep at most one of password_file, password_env, password_credential',
      'unknown key cluster.sentinels: remove it or check its spelling',
    ]);
  });
});
