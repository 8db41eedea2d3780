/**
 * Field types shared by the configuration schema (schema.ts) and the per-kind session schemas
 * (kinds.ts): durations, paths, URLs, secret sources, and the keys every session has.
 */
import * as z from 'zod';
import { MAX_LIFETIME_SECONDS } from '../session/expiry.js';

/** Longest wait a timer can hold: setTimeout fires at once beyond 2^31-1 ms (about 24.8 days). */
export const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);
export const seconds = z.number().positive().max(MAX_TIMER_SECONDS, { message: `must be at most ${MAX_TIMER_SECONDS} seconds (about 24 days; timers cannot wait longer)` });
export const absolutePath = z.string().refine((p) => p.startsWith('/'), { message: 'must be an absolute path' });
export const nginxVariable = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an nginx variable name (letters, digits, _), without the $' });

/** A session name ends up in file names and in nginx headers, so it is kept to a safe alphabet. */
export const SESSION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** An http(s) URL without user:password in it; `hint` says where credentials go instead. */
export function httpUrl(hint: string) {
  return z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL', abort: true })
    .refine((u) => !URL.canParse(u) || (new URL(u).username === '' && new URL(u).password === ''), { message: `must not contain credentials; ${hint}` });
}

/** A file holding a secret (one trailing newline is ignored). */
export const secretFile = absolutePath.optional();
/** The name of an environment variable holding a secret. */
export const secretEnv = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name' }).optional();
/** The name of a systemd credential (LoadCredential=) read from $CREDENTIALS_DIRECTORY. */
export const secretCredential = z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'must be a credential name' }).optional();

/**
 * A refinement: exactly one of `<prefix>_file`, `<prefix>_env`, `<prefix>_credential` is set.
 * `what` names the secret in the message ("password", "client secret").
 */
export function oneSecretSource(prefix: string, what: string) {
  return (s: object, ctx: z.RefinementCtx): void => {
    const keys = [`${prefix}_file`, `${prefix}_env`, `${prefix}_credential`];
    const count = keys.filter((k) => (s as Record<string, unknown>)[k] !== undefined).length;
    if (count === 1) return;
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: count === 0 ? `needs ${/^[AEIOU]/i.test(what) ? 'an' : 'a'} ${what} source: ${keys[0]}, ${keys[1]} or ${keys[2]}` : `has more than one ${what} source: keep exactly one of ${keys.join(', ')}`,
    });
  };
}

/** A cookie name: an RFC 6265 token. */
export const cookieName = z.string().regex(/^[A-Za-z0-9!#%&'*+.^_`|~-]+$/, { message: 'must be a cookie name (RFC 6265 token)' });
/** A lifetime in seconds, at most the longest believed (30 days). */
export const lifetimeSeconds = z.number().int().positive().max(MAX_LIFETIME_SECONDS, { message: `must be at most ${MAX_LIFETIME_SECONDS} seconds (30 days), the longest lifetime believed` });

/** Keys every kind of session has: its name, the backend, the include, timing. */
export const commonSessionShape = {
  /** Identifies the session in file names, logs, metrics and headers. */
  name: z.string().regex(SESSION_NAME, { message: 'must be 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit' }),
  /** The nginx include this session is rendered into. */
  include: absolutePath,
  /** Group owning the include (name or gid), so nginx can read it; default: the process's group. */
  group: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
  /** CA bundle (PEM) trusted for https (the backend, a token endpoint), in addition to the system's. */
  ca_file: absolutePath.optional(),
  /** Seconds one login or token request may take before it is abandoned and retried. */
  timeout: seconds.default(10),
  /** How many times a login or token request is retried after a network error, timeout or 502/503/504. */
  retries: z.number().int().min(0).max(10).default(2),
  /** Daemon: a cron expression that also triggers refreshes (e.g. "*\/5 * * * *"). */
  schedule: z.string().min(1).optional(),
  /** Daemon: with `schedule`, refresh only on it, not at half the remaining lifetime. */
  schedule_only: z.boolean().default(false),
  /** Daemon: a URL through nginx that answers `$<variable>_generation`, to verify reloads. */
  verify_url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
};

/**
 * A path on the backend that any valid credential may GET, asked when a 401 comes without a
 * challenge that names the token: 401 there means the credential is dead, 2xx or 403 that it is
 * alive (the first 401 was about the request).
 */
export const probePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~!&'()*+,;=:@%/-]*$/, { message: 'must be an absolute path on the backend, like /_session or /health' })
  .refine((p) => !p.startsWith('//') && !p.split('/').some((seg) => seg === '..' || seg === '.'), { message: 'must not start with // or hold . or .. segments' });
