/**
 * An include path that is, or resolves to, a file the include would destroy: the password file,
 * the configuration, nginx's files, the state directory and its files, another session's include.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { realPath } from '../../src/config/load.js';
import { includeConflicts } from '../../src/config/paths.js';
import { validateConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/schema.js';

function config(sessions: Record<string, unknown>[], extra: Record<string, unknown> = {}): Config {
  const base = { name: 'couch', url: 'http://127.0.0.1:5984', username: 'admin', password_file: '/etc/sr/couch.password', include: '/var/lib/sr/couch.conf' };
  const result = validateConfig({ state_dir: '/var/lib/sr/state', nginx: { config: '/etc/nginx/nginx.conf', pid_file: '/run/nginx.pid' }, ...extra, sessions: sessions.map((s) => ({ ...base, ...s })) });
  assert.ok(result.ok, result.ok ? '' : result.problems.join('; '));
  return result.config;
}

describe('includeConflicts', () => {
  it('finds nothing wrong with an include of its own, also under the state directory', () => {
    assert.deepEqual(includeConflicts(config([{}]), '/etc/sr/config.yaml'), []);
    assert.deepEqual(includeConflicts(config([{ include: '/var/lib/sr/state/couch.conf' }]), '/etc/sr/config.yaml'), []);
  });

  it('refuses an include that is a file it would destroy, naming the key, the file and what to do', () => {
    const cases: [Record<string, unknown>, string | undefined, RegExp][] = [
      [{ include: '/etc/sr/couch.password' }, undefined, /is the password_file of session couch/],
      [{ include: '/etc/sr/config.yaml' }, '/etc/sr/config.yaml', /is the configuration file/],
      [{ include: '/etc/nginx/nginx.conf' }, undefined, /is nginx's main configuration \(nginx\.config\)/],
      [{ include: '/run/nginx.pid' }, undefined, /is nginx's pid file/],
      [{ include: '/var/lib/sr/state' }, undefined, /is the state directory \(state_dir\)/],
      [{ include: '/var/lib/sr/state/couch.json' }, undefined, /is the state file of session couch/],
      [{ include: '/var/lib/sr/state/couch.lock' }, undefined, /is the lock of session couch/],
      [{ include: '/var/lib/sr/state/other.json' }, undefined, /is a state or lock file name in the state directory/],
      [{ include: '/etc/sr/ca.pem', ca_file: '/etc/sr/ca.pem', url: 'https://h:6984' }, undefined, /is the ca_file of session couch/],
    ];
    for (const [session, configPath, what] of cases) {
      const problems = includeConflicts(config([session]), configPath);
      assert.equal(problems.length, 1, JSON.stringify(session));
      assert.match(problems[0]!, /^sessions\[0\] \(couch\)\.include: /);
      assert.match(problems[0]!, what);
      assert.doesNotMatch(problems[0]!, /\n/);
    }
    assert.match(includeConflicts(config([{ include: '/etc/sr/couch.password' }]))[0]!, /the include is replaced on every refresh and would destroy it: give the include its own file$/);
  });

  it('sees through ".." and "//" in the include path', () => {
    const problems = includeConflicts(config([{ include: '/etc/sr/../sr//couch.password' }]));
    assert.match(problems[0]!, /\/etc\/sr\/\.\.\/sr\/\/couch\.password resolves to \/etc\/sr\/couch\.password, which is the password_file of session couch/);
  });

  it('refuses an include that is the password of another session, or the credential file under $CREDENTIALS_DIRECTORY', () => {
    const two = config([{ name: 'a', include: '/var/lib/sr/a.conf' }, { name: 'b', include: '/etc/sr/b.password', password_file: '/etc/sr/b.password' }]);
    assert.match(includeConflicts(two)[0]!, /^sessions\[1\] \(b\)\.include: .*password_file of session b/);
    const credential = config([{ password_file: undefined, password_credential: 'couch.password', include: '/run/credentials/sr.service/couch.password' }]);
    assert.match(includeConflicts(credential, undefined, undefined, '/run/credentials/sr.service')[0]!, /is the password credential of session couch/);
  });

  it('refuses two sessions whose different include paths are one file', () => {
    const problems = includeConflicts(config([{ name: 'a', include: '/var/lib/sr/x.conf' }, { name: 'b', include: '/var/lib/sr/./x.conf' }]));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^sessions\[1\] \(b\)\.include: \/var\/lib\/sr\/\.\/x\.conf resolves to \/var\/lib\/sr\/x\.conf, the include of sessions\[0\] \(a\); each session needs its own include$/);
  });

  it('resolves symbolic links with realPath: an include through a linked directory that lands on the password file is refused', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'session-refresher-paths-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await mkdir(join(dir, 'secrets'));
    await writeFile(join(dir, 'secrets', 'couch.password'), 'pw\n');
    await symlink(join(dir, 'secrets'), join(dir, 'nginx-auth'));
    await symlink(join(dir, 'secrets', 'couch.password'), join(dir, 'couch.conf'));
    for (const include of [join(dir, 'nginx-auth', 'couch.password'), join(dir, 'couch.conf')]) {
      const problems = includeConflicts(config([{ include, password_file: join(dir, 'secrets', 'couch.password') }]), undefined, realPath);
      assert.equal(problems.length, 1, include);
      assert.match(problems[0]!, new RegExp(`resolves to ${join(dir, 'secrets', 'couch.password')}, which is the password_file of session couch`));
    }
    assert.equal(realPath(join(dir, 'nginx-auth', 'not-yet', 'x.conf')), join(dir, 'secrets', 'not-yet', 'x.conf'), 'a path not created yet resolves through its existing part');
  });
});
