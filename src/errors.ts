/**
 * Error classes and the exit-code table. Every failure the tool knows about is one of these
 * classes: it carries a stable `code`, the process exit code the CLI uses for it, and a message
 * that says what failed, why and what to do, and never contains a password or a cookie.
 * Anything else that reaches the CLI is reported as a bug (exit 1).
 */

/** Process exit codes, following sysexits(3) where one fits. Documented in README.md. */
export const ExitCode = {
  /** Success; also a run that found the cookie still fresh and did nothing. */
  OK: 0,
  /** An unexpected internal error: a bug, please report it. */
  INTERNAL: 1,
  /** The include was written and checked, but nginx is not running, so it was not reloaded. */
  NGINX_NOT_RUNNING: 3,
  /** nginx was reloaded, but `verify_url` did not show the new generation within `daemon.verify_timeout`. */
  NOT_VERIFIED: 4,
  /** Bad command-line usage. */
  USAGE: 64,
  /** The backend's cookie (or its response) was malformed or hostile and was refused. */
  COOKIE_REFUSED: 65,
  /** The backend could not be reached, timed out or answered 5xx. */
  BACKEND_UNAVAILABLE: 69,
  /** `nginx -t` failed with the new include; the previous include was restored. */
  NGINX_TEST_FAILED: 70,
  /** nginx could not be reloaded (signal refused, pid file names another process, command failed). */
  RELOAD_FAILED: 71,
  /** The include or state file could not be written (permissions, read-only, disk full). */
  CANNOT_WRITE: 73,
  /** A temporary failure, such as waiting too long for another run's lock: try again later. */
  TEMPFAIL: 75,
  /** The backend answered in a way a CouchDB-style /_session never does (404, 200 without cookie). */
  PROTOCOL: 76,
  /** The backend rejected the username or password. */
  CREDENTIALS_REJECTED: 77,
  /** The configuration is invalid, or a file it names is missing or unreadable. */
  CONFIG: 78,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: a known failure with a stable code and an exit code. */
export class RefresherError extends Error {
  /** Stable machine-readable code, e.g. `ERR_CREDENTIALS_REJECTED`. */
  readonly code: string;
  /** The process exit code the CLI uses when this error ends a run. */
  readonly exitCode: ExitCodeValue;

  constructor(message: string, code: string, exitCode: ExitCodeValue, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Wrong command-line usage (unknown session name, bad flag value). */
export class UsageError extends RefresherError {
  constructor(message: string) {
    super(message, 'ERR_USAGE', ExitCode.USAGE);
  }
}

/** Most problems a ConfigError's message lists; the rest are counted. */
export const MAX_LISTED_PROBLEMS = 20;
/** Longest problem quoted in a ConfigError's message, in characters. */
export const MAX_PROBLEM_LENGTH = 300;

/**
 * The configuration is invalid; `problems` lists every problem found, one line each. The
 * message names the first MAX_LISTED_PROBLEMS (each cut to MAX_PROBLEM_LENGTH characters) and
 * counts the rest, so a pathological file still gives one readable line.
 */
export class ConfigError extends RefresherError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], source: string, options?: { cause?: unknown }) {
    const total = problems.length;
    const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => (p.length > MAX_PROBLEM_LENGTH ? `${p.slice(0, MAX_PROBLEM_LENGTH)}…` : p));
    const head = total === 1 ? `invalid configuration (${source}): ` : `invalid configuration (${source}), ${total} problems${total > MAX_LISTED_PROBLEMS ? `, the first ${MAX_LISTED_PROBLEMS}` : ''}: `;
    const tail = total > MAX_LISTED_PROBLEMS ? `; and ${total - MAX_LISTED_PROBLEMS} more` : '';
    super(head + listed.join('; ') + tail, 'ERR_CONFIG', ExitCode.CONFIG, options);
    this.problems = problems;
  }
}

/** The backend could not be reached, timed out, or answered 5xx after retries. */
export class BackendUnavailableError extends RefresherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_BACKEND_UNAVAILABLE', ExitCode.BACKEND_UNAVAILABLE, options);
  }
}

/** The backend rejected the credentials (401/403). Never retried. */
export class CredentialsRejectedError extends RefresherError {
  constructor(message: string) {
    super(message, 'ERR_CREDENTIALS_REJECTED', ExitCode.CREDENTIALS_REJECTED);
  }
}

/** The backend answered, but not as a CouchDB-style /_session does. */
export class ProtocolError extends RefresherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_PROTOCOL', ExitCode.PROTOCOL, options);
  }
}

/** The cookie (or the response carrying it) is malformed or could inject into nginx's config. */
export class CookieRefusedError extends RefresherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_COOKIE_REFUSED', ExitCode.COOKIE_REFUSED, options);
  }
}

/** `nginx -t` rejected the configuration with the new include (which has been rolled back). */
export class NginxTestError extends RefresherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_NGINX_TEST_FAILED', ExitCode.NGINX_TEST_FAILED, options);
  }
}

/** nginx is not running (no pid file, or its pid is gone): nothing to reload. */
export class NginxNotRunningError extends RefresherError {
  constructor(message: string) {
    super(message, 'ERR_NGINX_NOT_RUNNING', ExitCode.NGINX_NOT_RUNNING);
  }
}

/** nginx could not be reloaded. */
export class ReloadError extends RefresherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_RELOAD_FAILED', ExitCode.RELOAD_FAILED, options);
  }
}

/** nginx accepted the reload but did not serve the new generation in time (`verify_url`). */
export class ReloadNotVerifiedError extends RefresherError {
  constructor(message: string) {
    super(message, 'ERR_RELOAD_NOT_VERIFIED', ExitCode.NOT_VERIFIED);
  }
}

/**
 * The backend refuses cookies it has just issued (typically nodes that do not share their
 * cookie secret): logging in again would loop, so logins are held to one per floor interval.
 */
export class SessionLoopError extends RefresherError {
  constructor(message: string) {
    super(message, 'ERR_SESSION_LOOP', ExitCode.BACKEND_UNAVAILABLE);
  }
}

/** A file the tool owns (include, state, lock) could not be written. */
export class WriteError extends RefresherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_CANNOT_WRITE', ExitCode.CANNOT_WRITE, options);
  }
}

/** Another run held the session's lock for longer than the configured wait. */
export class LockTimeoutError extends RefresherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_LOCK_TIMEOUT', ExitCode.TEMPFAIL, options);
  }
}

/** Node's system error shape, for narrowing `catch` values. */
export interface SystemError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

/** True when `error` is a Node system error with the given code (e.g. `ENOENT`). */
export function hasCode(error: unknown, ...codes: string[]): error is SystemError {
  return error instanceof Error && typeof (error as SystemError).code === 'string' && codes.includes((error as SystemError).code!);
}

/** A short reason for a system error, without stack: "EACCES: permission denied". */
export function describeSystemError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as SystemError).code;
    // "ENOSPC: no space left on device, write '/x'" -> "ENOSPC: no space left on device"
    const text = error.message.replace(/^[A-Z]+: /, '').replace(/, \w+( '.*')?$/, '');
    return code ? `${code}: ${text}` : text;
  }
  return String(error);
}

/**
 * The fleet store (Redis, `cluster:`) could not be reached or did not answer in time. The
 * daemon keeps serving the cookie it has; a one-shot command fails with TEMPFAIL.
 */
export class ClusterUnavailableError extends RefresherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_CLUSTER_UNAVAILABLE', ExitCode.TEMPFAIL, options);
  }
}
