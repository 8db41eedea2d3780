/**
 * The test suite leaves nothing behind in the work tree. pouchdb-server writes `config.json` and
 * `log.txt` into its working directory; started from the repository, it would leave them at the
 * top level (as it once did). The helper every test, the demo and the bench use starts it in a
 * temp directory; this file checks that with git, and checks that git would have seen the files.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { startCouch } from '../helpers/couch.js';
import { LineWatcher } from '../helpers/lines.js';
import { ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

/** Untracked files git reports under `dir` (one path per entry, every file listed). */
function untracked(dir: string): string[] {
  const run = spawnSync('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=all'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`git status in ${dir} failed: ${run.stderr || run.error?.message}`);
  return run.stdout
    .split('\n')
    .filter((l) => l.startsWith('?? '))
    .map((l) => l.slice(3));
}

/** A reason to skip when the checkout is not a git work tree; under CI=true (a clean clone) that is an error. */
function skipWithoutGit(): string | false {
  const inside = spawnSync('git', ['-C', ROOT, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' });
  if (inside.status === 0 && inside.stdout.trim() === 'true') return false;
  if (process.env.CI === 'true') throw new Error(`${ROOT} is not a git work tree (or git is missing), and under CI=true this test may not skip: run the suite from a clone`);
  return 'not a git work tree (or git is missing); the clean-tree check is skipped';
}

const PB = `${ROOT}node_modules/pouchdb-server/bin/pouchdb-server`;

describe('the work tree after the test helpers ran pouchdb-server', { skip: skipWithoutGit() }, () => {
  test('starting, using and stopping pouchdb-server through the helper adds no untracked file to the repository', async () => {
    const before = new Set(untracked(ROOT));
    const couch = await startCouch();
    try {
      // A logged request (log.txt) and a config change (config.json), as every integration test makes.
      await couch.rotateSecret();
      await couch.settle();
    } finally {
      await couch.stop();
    }
    const added = untracked(ROOT).filter((f) => !before.has(f));
    assert.deepEqual(added, [], `pouchdb-server left files in ${ROOT}`);
  });

  test('git does see the files pouchdb-server leaves in its working directory (a scratch repository as cwd)', async () => {
    const scratch = await tempDir('sr-git-');
    try {
      assert.equal(spawnSync('git', ['init', '-q', scratch.path]).status, 0, 'git init');
      const port = await freePort();
      const child = spawn(process.execPath, [PB, '--in-memory', '--host', '127.0.0.1', '--port', String(port)], { cwd: scratch.path, stdio: ['ignore', 'pipe', 'ignore'] });
      const exited = once(child, 'exit');
      try {
        const out = new LineWatcher(child.stdout);
        await out.waitFor(/has started on/, 30_000, 'pouchdb-server to start');
        await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer();
        await out.waitFor(/GET \/ /, 10_000, 'pouchdb-server to log the request');
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
      assert.deepEqual(untracked(scratch.path).sort(), ['config.json', 'log.txt']);
    } finally {
      await scratch.remove();
    }
  });
});
