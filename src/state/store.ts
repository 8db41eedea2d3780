/**
 * The per-session state file, `<state_dir>/<name>.json` (mode 0600): what the last run did.
 * It never holds the cookie; that lives only in the include.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { WriteError, describeSystemError } from '../errors.js';
import { readIfExists, writeAtomic } from '../render/write.js';

/** The outcome of the latest run for a session. */
export interface LastResult {
  result: 'ok' | 'error';
  /** ISO time of the run. */
  at: string;
  /** For errors: the stable error code and the one-line message. */
  code?: string | undefined;
  message?: string | undefined;
}

/** What is known about a session between runs. */
export interface SessionState {
  /** Increases with every new cookie written; 0 before the first. */
  generation: number;
  /** ISO times of the current cookie, when there is one. */
  issued?: string | undefined;
  expires?: string | undefined;
  /** How the expiry was found: max-age, expires, cookie-timestamp or lifetime. */
  expiry_source?: string | undefined;
  /** sha256 of the include as last written, to notice a file edited or removed by hand. */
  include_sha256?: string | undefined;
  /** The include changed but nginx has not yet been reloaded with it. */
  reload_pending?: boolean | undefined;
  /** ISO time of the last successful login. */
  last_login?: string | undefined;
  /** ISO time of the last renewal (a new cookie from `GET /_session`, no password). */
  last_renewal?: string | undefined;
  /** How the current cookie was obtained, and when (ISO, milliseconds). */
  obtained_by?: 'login' | 'renewal' | undefined;
  obtained_at?: string | undefined;
  last?: LastResult | undefined;
  /**
   * A condition the daemon saw that a later successful pass does not undo, such as the backend
   * refusing cookies it has just issued (`ERR_SESSION_LOOP`). `status` shows it while recent.
   */
  alert?: { code: string; message: string; at: string } | undefined;
}

/** Path of a session's state file. */
export function statePath(stateDir: string, name: string): string {
  return join(stateDir, `${name}.json`);
}

/**
 * The session's state, or undefined when there is none or it is not JSON. Throws WriteError when
 * the path holds something other than a small regular file (see readIfExists).
 */
export async function readState(stateDir: string, name: string): Promise<SessionState | undefined> {
  const bytes = await readIfExists(statePath(stateDir, name), { what: 'the state file', key: 'state_dir' });
  if (!bytes) return undefined;
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as SessionState;
    if (typeof parsed !== 'object' || parsed === null || !Number.isSafeInteger(parsed.generation)) return undefined;
    // A time that is not a date (edited by hand, or from an older version) is as good as none:
    // it must never reach a timer or a comparison as NaN.
    for (const key of ['issued', 'expires', 'last_login'] as const) if (parsed[key] !== undefined && !isIsoTime(parsed[key])) delete parsed[key];
    return parsed;
  } catch {
    return undefined;
  }
}

function isIsoTime(value: unknown): boolean {
  return typeof value === 'string' && Number.isFinite(Date.parse(value));
}

/** Writes the state atomically with mode 0600. */
export async function writeState(stateDir: string, name: string, state: SessionState): Promise<void> {
  await writeAtomic(statePath(stateDir, name), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** State directories this process has made sure of (the daemon's request path passes here on every login). */
const ensured = new Set<string>();

/** Creates the state directory (0750) when missing; once per process unless `forgetStateDir` says it may be gone. */
export async function ensureStateDir(stateDir: string): Promise<void> {
  if (ensured.has(stateDir)) return;
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o750 });
  } catch (error) {
    throw new WriteError(`cannot create the state directory ${stateDir}: ${describeSystemError(error)}; create it or set state_dir`, { cause: error });
  }
  ensured.add(stateDir);
}

/** After a failed pass: the directory may have been removed, so the next pass makes sure again. */
export function forgetStateDir(stateDir: string): void {
  ensured.delete(stateDir);
}
