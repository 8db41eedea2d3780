/**
 * The shipped systemd units: they pass `systemd-analyze verify`, the daemon's hardening rates
 * 2.0 or lower in `systemd-analyze security --offline=true`, and the password arrives the way
 * LoadCredential= delivers it ($CREDENTIALS_DIRECTORY).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { CLI, ROOT } from '../helpers/paths.js';
import { startStack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

function systemdAnalyze(): string | false {
  if (spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI === 'true') throw new Error("systemd-analyze is missing, and under CI=true this test may not skip: install Debian's systemd package (.ci/run does)");
  return 'systemd-analyze is not installed (apt-get install systemd)';
}

/** The units as shipped, with ExecStart pointing at this checkout's built CLI instead of /usr/local/bin. */
async function unitsFor(dir: string): Promise<string[]> {
  const names = (await readdir(join(ROOT, 'systemd'))).filter((n) => /\.(service|timer)$/.test(n));
  for (const name of names) {
    const text = await readFile(join(ROOT, 'systemd', name), 'utf8');
    await writeFile(join(dir, name), text.replaceAll('/usr/local/bin/session-refresher', CLI));
  }
  return names;
}

describe('the shipped systemd units', { skip: systemdAnalyze() }, () => {
  test('every unit passes systemd-analyze verify', async () => {
    const dir = await tempDir('sr-systemd-');
    try {
      const names = await unitsFor(dir.path);
      assert.deepEqual(names.sort(), ['session-refresher.service', 'session-refresher.timer', 'session-refresherd.service']);
      const result = spawnSync('systemd-analyze', ['verify', ...names.map((n) => join(dir.path, n))], { encoding: 'utf8', cwd: dir.path });
      assert.equal(result.status, 0, result.stderr + result.stdout);
      assert.equal(result.stderr.trim(), '', 'no warnings');
    } finally {
      await dir.remove();
    }
  });

  test('both services rate 2.0 or lower (OK) in systemd-analyze security --offline=true', async () => {
    const dir = await tempDir('sr-systemd-');
    try {
      await unitsFor(dir.path);
      for (const name of ['session-refresherd.service', 'session-refresher.service']) {
        const result = spawnSync('systemd-analyze', ['security', '--offline=true', join(dir.path, name)], { encoding: 'utf8' });
        const match = /Overall exposure level for \S+: (\d+\.\d+) (\w+)/.exec(result.stdout + result.stderr);
        assert.ok(match, result.stdout + result.stderr);
        assert.ok(Number(match[1]) <= 2.0, `${name} rates ${match[1]} ${match[2]}`);
        const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
        assert.ok(readme.includes(`${name}\` rates ${match[1]}`), `README states the score of ${name} (${match[1]})`);
      }
    } finally {
      await dir.remove();
    }
  });

  test('the unit passes the password as a credential and the config reads it from $CREDENTIALS_DIRECTORY', { skip: skipWithoutNginx() }, async () => {
    const unit = await readFile(join(ROOT, 'systemd', 'session-refresherd.service'), 'utf8');
    const credential = /^LoadCredential=([^:]+):/m.exec(unit)?.[1];
    assert.equal(credential, 'couch.password');
    const stack = await startStack();
    try {
      const credentials = join(stack.dir, 'credentials');
      await mkdir(credentials);
      await copyFile(stack.passwordFile, join(credentials, credential));
      delete stack.session.password_file;
      stack.session.password_credential = credential;
      await stack.writeConfig();
      const run = await stack.cli(['refresh-now'], { CREDENTIALS_DIRECTORY: credentials });
      assert.equal(run.code, 0, run.stderr);
      const without = await stack.cli(['refresh-now', '--force'], { CREDENTIALS_DIRECTORY: '' });
      assert.equal(without.code, 78);
      assert.match(without.stderr, /password_credential is set but \$CREDENTIALS_DIRECTORY is not/);
    } finally {
      await stack.stop();
    }
  });
});
