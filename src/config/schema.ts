/**
 * The configuration schema: every key, its type and its default. Validation is done by zod;
 * the messages it produces are turned into one line per problem by `validate.ts`.
 */
import { z } from 'zod';

const seconds = z.number().positive();
const absolutePath = z.string().refine((p) => p.startsWith('/'), { message: 'must be an absolute path' });
const nginxVariable = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an nginx variable name (letters, digits, _), without the $' });

/** A session name ends up in file names and in nginx headers, so it is kept to a safe alphabet. */
export const SESSION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** One backend login session and the include it is rendered into. */
export const sessionSchema = z
  .strictObject({
    /** Identifies the session in file names, logs, metrics and headers. */
    name: z.string().regex(SESSION_NAME, { message: 'must be 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit' }),
    /** Backend base URL; `_session` is resolved against it. */
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    /** The account that logs in. */
    username: z.string().min(1, { message: 'must not be empty' }),
    /** A file holding the password (one trailing newline is ignored). */
    password_file: absolutePath.optional(),
    /** The name of an environment variable holding the password. */
    password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name' }).optional(),
    /** The name of a systemd credential (LoadCredential=) read from $CREDENTIALS_DIRECTORY. */
    password_credential: z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'must be a credential name' }).optional(),
    /** The nginx include this session is rendered into. */
    include: absolutePath,
    /** The nginx variable set in the include; `<variable>_generation` is set beside it. */
    variable: nginxVariable.default('auth_cookie'),
    /** The session cookie's name. */
    cookie_name: z.string().regex(/^[A-Za-z0-9!#%&'*+.^_`|~-]+$/, { message: 'must be a cookie name (RFC 6265 token)' }).default('AuthSession'),
    /** Session lifetime in seconds, used when the cookie carries no Max-Age or Expires. */
    lifetime: z.number().int().positive().default(600),
    /** Group owning the include (name or gid), so nginx can read it; default: the process's group. */
    group: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
    /** CA bundle (PEM) trusted for an https backend, in addition to the system's. */
    ca_file: absolutePath.optional(),
    /** Seconds one login request may take before it is abandoned and retried. */
    timeout: seconds.default(10),
    /** How many times a login is retried after a network error, timeout or 502/503/504. */
    retries: z.number().int().min(0).max(10).default(2),
  })
  .superRefine((s, ctx) => {
    const sources = [s.password_file, s.password_env, s.password_credential].filter((v) => v !== undefined);
    if (sources.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          sources.length === 0
            ? 'needs a password source: password_file, password_env or password_credential'
            : 'has more than one password source: keep exactly one of password_file, password_env, password_credential',
      });
    }
  });

/** How nginx is checked and reloaded. */
export const nginxSchema = z.strictObject({
  /** The nginx binary used for `nginx -t`. */
  binary: z.string().min(1).default('nginx'),
  /** `-c`: the main configuration file, when not nginx's compiled-in default. */
  config: absolutePath.optional(),
  /** `-p`: the prefix, when not nginx's compiled-in default. */
  prefix: absolutePath.optional(),
  /** Run `nginx -t` after writing an include, and roll back when it fails. */
  test: z.boolean().default(true),
  /** The master's pid file; the master is sent SIGHUP to reload. */
  pid_file: absolutePath.default('/run/nginx.pid'),
  /** Instead of a signal, run this command to reload (no shell), e.g. ["systemctl", "reload", "nginx"]. */
  reload_command: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Seconds `nginx -t` or the reload command may take. */
  command_timeout: seconds.default(30),
});

/** The whole configuration file. */
export const configSchema = z
  .strictObject({
    /** Where state files and locks live. */
    state_dir: absolutePath.default('/var/lib/session-refresher'),
    /** Seconds a run waits for another run's lock on the same session. */
    lock_timeout: seconds.default(30),
    /** pino log level. */
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    nginx: nginxSchema.default(() => nginxSchema.parse({})),
    sessions: z.array(sessionSchema).min(1, { message: 'must list at least one session' }),
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.sessions.forEach((s, i) => {
      const prior = seen.get(s.name);
      if (prior !== undefined) ctx.addIssue({ code: 'custom', path: ['sessions', i, 'name'], message: `repeats the name of sessions[${prior}]`, input: s.name });
      seen.set(s.name, i);
    });
    const includes = new Map<string, number>();
    c.sessions.forEach((s, i) => {
      const prior = includes.get(s.include);
      if (prior !== undefined) ctx.addIssue({ code: 'custom', path: ['sessions', i, 'include'], message: `is also the include of sessions[${prior}]`, input: s.include });
      includes.set(s.include, i);
    });
  });

export type Config = z.infer<typeof configSchema>;
export type SessionConfig = z.infer<typeof sessionSchema>;
export type NginxConfig = z.infer<typeof nginxSchema>;

/** Keys of a session, for mapping environment variables onto them. */
export const SESSION_KEYS = Object.keys(sessionSchema.shape) as (keyof SessionConfig)[];
/** Keys of the nginx section. */
export const NGINX_KEYS = Object.keys(nginxSchema.shape) as (keyof NginxConfig)[];
/** Scalar top-level keys. */
export const TOP_KEYS = ['state_dir', 'lock_timeout', 'log_level'] as const;
