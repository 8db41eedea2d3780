/**
 * The optional `cluster:` section: the Redis store a fleet of nodes shares one session through
 * (see src/fleet/). Without it, every node works alone, exactly as before. Kept apart from
 * schema.ts so the fleet's keys live with their own validation.
 */
import * as z from 'zod';

/** Same bound as schema.ts's timers (setTimeout cannot wait longer than 2^31-1 ms). */
const MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000);
const seconds = z.number().positive().max(MAX_SECONDS, { message: `must be at most ${MAX_SECONDS} seconds` });
const absolutePath = z.string().refine((p) => p.startsWith('/'), { message: 'must be an absolute path' });

/** `{`, `}` would break the hash tag that keeps a session's keys together. */
const KEY_PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The `cluster:` section. Its minimal form is `cluster: {url: redis://host:port}`. */
export const clusterSchema = z
  .strictObject({
    /** `redis://host:port[/db]`, or `rediss://…` for TLS. Never with a password: use a password source. */
    url: z
      .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL', abort: true })
      .refine((u) => !URL.canParse(u) || (new URL(u).username === '' && new URL(u).password === ''), { message: 'must not contain credentials; use username and a password source' })
      .optional(),
    /**
     * Redis Sentinel instead of `url`: the primary is asked of the sentinels by `name`, and
     * followed through a failover. The password and username are the data nodes'.
     */
    sentinel: z
      .strictObject({
        /** The monitored primary's name (`sentinel monitor <name> ...`). */
        name: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, { message: 'must be 1-128 letters, digits, "_", ".", ":" or "-"' }),
        /** Sentinel addresses, `host:port` (at least one; list them all). */
        nodes: z.array(z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { message: 'must be host:port' })).min(1, { message: 'must list at least one sentinel' }),
      })
      .optional(),
    /** The Redis ACL user; default: Redis's default user. */
    username: z.string().min(1).optional(),
    /** A file holding the Redis password (one trailing newline is ignored). */
    password_file: absolutePath.optional(),
    /** The name of an environment variable holding the Redis password. */
    password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name' }).optional(),
    /** The name of a systemd credential holding the Redis password. */
    password_credential: z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'must be a credential name' }).optional(),
    /** CA bundle (PEM) trusted for a rediss:// server, in addition to the system's. */
    ca_file: absolutePath.optional(),
    /** Prefix of every key (inside the hash tag), so fleets can share one Redis. */
    key_prefix: z.string().regex(KEY_PREFIX, { message: 'must be 1-64 letters, digits, "_", ".", ":" or "-"' }).default('session-refresher'),
    /** This node's name in the store (`issued_by`) and in metrics; default: the host name. */
    node_id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, { message: 'must be 1-128 letters, digits, "_", ".", ":" or "-"' }).optional(),
    /** Seconds the login lock lives unrenewed (it is renewed every third of this while a login runs). */
    lock_ttl: seconds.default(10),
    /** Seconds between re-reads of the store (pub/sub may lose a message; this bounds the delay). */
    poll_interval: seconds.default(5),
    /** Seconds a node waits for another node's login to be published before it logs in itself. */
    wait_timeout: seconds.default(15),
    /** Seconds a Redis command may take before it counts as failed. */
    command_timeout: seconds.default(1),
  })
  .superRefine((c, ctx) => {
    const sources = [c.password_file, c.password_env, c.password_credential].filter((v) => v !== undefined);
    if (sources.length > 1) ctx.addIssue({ code: 'custom', path: [], message: 'has more than one password source: keep at most one of password_file, password_env, password_credential' });
    if ((c.url === undefined) === (c.sentinel === undefined)) ctx.addIssue({ code: 'custom', path: [], message: c.url === undefined ? 'needs url (redis://host:port) or sentinel (name and nodes)' : 'has both url and sentinel: keep one' });
    if (c.sentinel && c.ca_file !== undefined) ctx.addIssue({ code: 'custom', path: ['ca_file'], message: 'is for a rediss:// url; TLS through Sentinel is not supported' });
    if (c.ca_file !== undefined && c.url !== undefined && URL.canParse(c.url) && new URL(c.url).protocol !== 'rediss:') ctx.addIssue({ code: 'custom', path: ['ca_file'], message: 'is only used with a rediss:// (TLS) url' });
    if (c.wait_timeout <= c.lock_ttl) ctx.addIssue({ code: 'custom', path: ['wait_timeout'], message: `must be longer than lock_ttl (${c.lock_ttl}s), or a node gives up waiting while the login it waits for still holds the lock`, input: c.wait_timeout });
  });

export type ClusterConfig = z.infer<typeof clusterSchema>;
