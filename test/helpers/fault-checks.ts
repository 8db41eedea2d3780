/**
 * What every failed `refresh-now` run must leave behind, as assertions shared by the
 * faults-cli-*.test.ts files: the exit code's one line on stderr, no password or cookie in the
 * output, and the previous include byte for byte with nginx not reloaded and still serving.
 */
import assert from 'node:assert/strict';
import type { CliResult } from './cli.js';
import type { Script } from './scripted-backend.js';
import type { Stack } from './stack.js';

/** The body a CouchDB /_session answers a good login with. */
export const COUCH_OK_BODY = '{"ok":true,"name":"admin","roles":["_admin"]}';

/** The value of the cookie in an include we wrote. */
export function cookieOf(include: Buffer | string): string {
  const match = /AuthSession=([^"]+)"/.exec(include.toString());
  assert.ok(match, `no cookie in the include:\n${include.toString()}`);
  return match[1]!;
}

/** The one line a failed run prints; fails unless stderr holds exactly one line. */
export function oneLine(run: CliResult): string {
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${run.stderr}`);
  return lines[0]!;
}

/** Neither the password nor any of the cookies appears in what the run printed. */
export function assertNoSecrets(run: CliResult, secrets: string[]): void {
  for (const secret of secrets) assert.ok(!`${run.stdout}\n${run.stderr}`.includes(secret), 'a password or cookie value was printed');
}

/**
 * The state a failed run must leave behind on the stack: the include byte for byte, no reload,
 * and nginx still answering an admin-only endpoint with the earlier cookie.
 */
export async function assertPreviousKept(stack: Stack, include: Buffer, reloads: number): Promise<void> {
  assert.deepEqual(await stack.includeBytes(), include, 'the previous include is kept byte for byte');
  assert.equal(await stack.nginx.reloads(), reloads, 'nginx was not reloaded');
  const res = await stack.get('/_config');
  assert.equal(res.status, 200, `nginx still serves with the earlier cookie: ${res.body}`);
}

/** A promise resolved the first time the scripted backend receives a request, and a script that resolves it. */
export function onFirstRequest(answer: ReturnType<Script>): { script: Script; received: Promise<void> } {
  let resolve!: () => void;
  const received = new Promise<void>((r) => (resolve = r));
  return {
    received,
    script: () => {
      resolve();
      return answer;
    },
  };
}
