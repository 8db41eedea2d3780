/**
 * The configuration schema: every key, its type and its default. Validation is done by zod;
 * the messages it produces are turned into one line per problem by `validate.ts`.
 */
import * as z from 'zod';
import { clusterSchema } from './cluster-schema.js';
import { absolutePath, seconds } from './fields.js';
import { anySessionSchema, couchSessionSchema, KIND_SCHEMAS } from './kinds.js';

// A configuration is parsed once or twice per process: compiling zod's object parsers into
// generated functions (its default) costs more than it saves. Interpreted parsing is the same
// validation, without eval.
z.config({ jitless: true });

export { MAX_TIMER_SECONDS, SESSION_NAME } from './fields.js';
export { couchSessionSchema as sessionSchema } from './kinds.js';

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

/** The fallback's default address: a unix socket in the service's runtime directory (systemd RuntimeDirectory=). */
export const DEFAULT_FALLBACK_SOCKET = 'unix:/run/session-refresher/fallback.sock';

/** `host:port`, `[v6]:port` or `unix:/path`. */
const listenAddress = z.string().regex(/^(unix:\/.+|\[[0-9A-Fa-f:.]+\]:\d{1,5}|[A-Za-z0-9.-]+:\d{1,5})$/, { message: 'must be host:port, [ipv6]:port or unix:/path' });

/** The daemon (`run`): fallback endpoint, admin endpoint, timing. */
export const daemonSchema = z.strictObject({
  /**
   * Where nginx's @session_refresh location sends rejected requests. The default unix socket is
   * created mode 0660, so only the daemon's user and group (nginx's, under the shipped unit) reach it.
   */
  listen: listenAddress.default(DEFAULT_FALLBACK_SOCKET),
  /**
   * The nginx include holding the per-install key nginx proves itself with on the fallback
   * (made on first use, mode 0640); default: fallback-key.conf in state_dir.
   */
  fallback_key_file: absolutePath.optional(),
  /** /healthz and /metrics; kept apart from the fallback so nginx can never forward to it. */
  admin_listen: listenAddress.default('127.0.0.1:8982'),
  /** Accept a `listen`/`admin_listen` that is not loopback or a unix socket. */
  allow_non_loopback: z.boolean().default(false),
  /**
   * Seconds: the floor against login loops. However often cookies fail, a session logs in at most
   * once per this interval; a 401 that needs a login sooner waits for it (or, when the backend
   * keeps refusing fresh cookies, gets 503 with Retry-After).
   */
  min_refresh_interval: seconds.default(1),
  /**
   * Seconds between validity probes (`GET /_session` with the current cookie, an HMAC check on
   * the backend) that replace a dead session before a client meets it; 0 turns them off.
   */
  probe_interval: z.number().min(0).default(5),
  /** Seconds a replayed request may take. */
  replay_timeout: seconds.default(60),
  /** Seconds in-flight replays may take to finish after SIGTERM. */
  shutdown_timeout: seconds.default(30),
  /** At most this many nginx reloads per minute; more are coalesced. */
  max_reloads_per_minute: z.number().int().positive().default(12),
  /** Seconds to wait for nginx to serve a new generation (with a session's verify_url). */
  verify_timeout: seconds.default(10),
  /** Seconds: first and longest delay between retries of a failed refresh. */
  retry_min: seconds.default(1),
  retry_max: seconds.default(300),
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
    daemon: daemonSchema.default(() => daemonSchema.parse({})),
    sessions: z.array(anySessionSchema).min(1, { message: 'must list at least one session' }),
    /** A fleet sharing each session through Redis (cluster-schema.ts); absent: this node works alone. */
    cluster: clusterSchema.optional(),
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
/** A session of any credential kind, as `sessions[]` holds it. */
export type AnySessionConfig = Config['sessions'][number];
/**
 * A `couchdb-session` session: the kind there was before kinds existed, so it keeps the plain
 * name the CouchDB code (session/*) has always taken.
 */
export type SessionConfig = z.infer<typeof couchSessionSchema>;
export type NginxConfig = z.infer<typeof nginxSchema>;
export type DaemonConfig = z.infer<typeof daemonSchema>;

const kindShapes = Object.values(KIND_SCHEMAS).map((schema) => schema.shape as Record<string, z.ZodType>);
/** Keys of a session of any kind, for mapping environment variables onto them. */
export const SESSION_KEYS = [...new Set(kindShapes.flatMap((shape) => Object.keys(shape)))];
/** Sections (nested mappings) and their keys, for mapping environment variables onto them. */
export const SECTIONS = { nginx: Object.keys(nginxSchema.shape), daemon: Object.keys(daemonSchema.shape), cluster: Object.keys(clusterSchema.shape) } as const;
/** Keys whose values are numbers or booleans (environment values for them are read as YAML scalars). */
export const NON_STRING_KEYS: ReadonlySet<string> = new Set(
  [...kindShapes, nginxSchema.shape, daemonSchema.shape, clusterSchema.shape, { lock_timeout: seconds }].flatMap((shape) =>
    Object.entries(shape as Record<string, z.ZodType>).filter(([, schema]) => ['number', 'boolean'].includes(baseType(schema))).map(([key]) => key),
  ),
);

/** The type under any default/optional wrappers: "number", "string", "union", … */
function baseType(schema: z.ZodType): string {
  let def = schema.def as { type: string; innerType?: z.ZodType };
  while ((def.type === 'default' || def.type === 'optional' || def.type === 'nullable') && def.innerType) def = def.innerType.def as typeof def;
  return def.type;
}

/** Scalar top-level keys. */
export const TOP_KEYS = ['state_dir', 'lock_timeout', 'log_level'] as const;
