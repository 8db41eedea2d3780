/**
 * `check`: are the files around a session what they should be? The include and the state file
 * must be regular files or absent (a FIFO or a link there makes every refresh fail); a
 * directory anyone may write lets anyone replace the include nginx reads; a password file
 * anyone may read gives the service account away. Problems with the files themselves fail the
 * check; loose permissions are warnings.
 */
import { sessionSecret } from '../credentials/secret.js';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AnySessionConfig, Config } from '../config/schema.js';
import { ExitCode, RefresherError, describeSystemError, type ExitCodeValue } from '../errors.js';
import { fallbackKeyPath, readFallbackKey } from '../nginx/fallback-key.js';
import { readIfExists } from '../render/write.js';
import { statePath } from '../state/store.js';

/** One line of `check` output (the shape check.ts prints). */
export interface FileFinding {
  ok: boolean;
  warn?: boolean;
  what: string;
  detail: string;
  exitCode: ExitCodeValue;
}

function mode(m: number): string {
  return `mode ${(m & 0o7777).toString(8).padStart(4, '0')}`;
}

/** A warning when `dir` is writable by every user, else nothing (also nothing when it does not exist yet). */
export async function worldWritableDir(dir: string, what: string, why: string): Promise<FileFinding[]> {
  const stats = await stat(dir).catch(() => undefined);
  if (!stats?.isDirectory() || (stats.mode & 0o002) === 0) return [];
  return [{ ok: true, warn: true, what, detail: `${dir} is writable by every user (${mode(stats.mode)}): ${why}; chmod o-w ${dir}`, exitCode: ExitCode.OK }];
}

/** A warning when the file at `path` can be read by every user, else nothing. */
export async function readableByOthers(path: string, what: string): Promise<FileFinding[]> {
  const stats = await stat(path).catch(() => undefined);
  if (!stats?.isFile() || (stats.mode & 0o004) === 0) return [];
  return [{ ok: true, warn: true, what, detail: `${path} is readable by every user (${mode(stats.mode)}); chmod o-r ${path} (and give it to the service's group, mode 0640)`, exitCode: ExitCode.OK }];
}

async function regularOrAbsent(path: string, label: { what: string; key: string }, what: string): Promise<FileFinding[]> {
  try {
    await readIfExists(path, label);
    return [];
  } catch (error) {
    const detail = error instanceof RefresherError ? error.message : describeSystemError(error);
    return [{ ok: false, what, detail, exitCode: error instanceof RefresherError ? error.exitCode : ExitCode.CANNOT_WRITE }];
  }
}

/**
 * File findings for the state directory and every session, and whether every include is a
 * regular file or absent: when one is not, nginx itself would block reading it (a FIFO), so
 * the caller must not run `nginx -t` or `nginx -T`.
 */
export async function fileFindings(config: Config): Promise<{ findings: FileFinding[]; includesReadable: boolean }> {
  const findings = await worldWritableDir(config.state_dir, 'state_dir', 'anyone on the host can replace the state and locks');
  findings.push(...(await fallbackKeyFindings(config)));
  let includesReadable = true;
  for (const session of config.sessions) {
    const include = await regularOrAbsent(session.include, { what: 'the include', key: 'include' }, `session ${session.name} include`);
    if (include.length > 0) includesReadable = false;
    findings.push(...include, ...(await sessionFiles(config, session)));
  }
  return { findings, includesReadable };
}

/** The fallback key: present and ours, and readable by the service and nginx only. */
async function fallbackKeyFindings(config: Config): Promise<FileFinding[]> {
  const path = fallbackKeyPath(config);
  const what = 'fallback key';
  try {
    const key = await readFallbackKey(path);
    if (key === undefined) {
      return [{ ok: true, warn: true, what, detail: `${path} does not exist yet: \`run\` or \`nginx-snippet --placeholder\` makes it, and an nginx config that includes it fails until then`, exitCode: ExitCode.OK }];
    }
  } catch (error) {
    return [{ ok: false, what, detail: error instanceof RefresherError ? error.message : describeSystemError(error), exitCode: error instanceof RefresherError ? error.exitCode : ExitCode.CONFIG }];
  }
  const loose = await readableByOthers(path, what);
  return loose.length > 0 ? loose : [{ ok: true, what, detail: `${path}: present, not readable by other users`, exitCode: ExitCode.OK }];
}

async function sessionFiles(config: Config, session: AnySessionConfig): Promise<FileFinding[]> {
  const what = `session ${session.name}`;
  const secret = sessionSecret(session);
  return [
    ...(await regularOrAbsent(statePath(config.state_dir, session.name), { what: 'the state file', key: 'state_dir' }, `${what} state file`)),
    ...(await worldWritableDir(dirname(session.include), `${what} include directory`, 'anyone on the host can replace the include nginx reads, and choose the cookie it sends upstream')),
    ...(secret.file ? await readableByOthers(secret.file, `${what} ${secret.what} file`) : []),
  ];
}
