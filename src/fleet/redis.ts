/**
 * The fleet store on Redis, through node-redis (`@redis/client`). Two connections: one for
 * commands, one subscribed to the session channels. The offline queue is off and every command
 * has a timeout, so while Redis is down a command fails at once instead of piling up lock
 * requests that would run, stale, when it returns. Reconnection is node-redis's, with a capped
 * backoff; subscriptions are restored by it on reconnect.
 */
import { randomBytes } from 'node:crypto';
import { createClient, createSentinel, type RedisClientType } from '@redis/client';
import { ClusterUnavailableError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { sessionKeys, type SessionKeys } from './keys.js';
import { RenewingLock } from './lock.js';
import { PUBLISH_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT } from './scripts.js';
import type { ConnectionListener, FleetLock, FleetRecord, FleetStore, GenerationListener, PublishResult } from './store.js';

/** How the Redis store connects. */
export interface RedisStoreOptions {
  /** `redis://host:port[/db]` or `rediss://…` (TLS); never carries a password. Absent: `sentinel`. */
  url?: string | undefined;
  /** Redis Sentinel: the primary's name and the sentinels' `host:port`, instead of `url`. */
  sentinel?: { name: string; nodes: string[] } | undefined;
  /** ACL user; undefined: the default user. */
  username?: string | undefined;
  /** Password (AUTH); undefined: none. */
  password?: string | undefined;
  /** PEM CA bundle trusted for `rediss://`, in addition to the system's. */
  ca?: Buffer | undefined;
  /** Prefix inside each key's hash tag. */
  keyPrefix: string;
  /** Milliseconds a command (or a connection attempt) may take before it fails. Default 1000. */
  commandTimeoutMs?: number | undefined;
  /** Longest wait between reconnection attempts, ms. Default 2000. */
  maxReconnectDelayMs?: number | undefined;
  log?: Logger | undefined;
}

type Client = RedisClientType;

/** `host:port` or `[v6]:port` as node-redis wants it. */
function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(at + 1)) };
}

/** Starts connecting at once and returns without waiting: commands fail fast until connected. */
export function createRedisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}

/** See the file comment. */
export class RedisStore implements FleetStore {
  private readonly commands: Client;
  private readonly subscriber: Client;
  private readonly listeners = new Set<ConnectionListener>();
  private readonly where: string;
  private readonly log: Logger;
  private wasConnected = false;
  /** Every channel asked for, with its handler; `subscribed` holds those Redis has confirmed. */
  private readonly channels = new Map<string, (message: string) => void>();
  private readonly subscribed = new Set<string>();
  private closed = false;

  constructor(private readonly options: RedisStoreOptions) {
    this.log = (options.log ?? silentLogger).child({ component: 'fleet' });
    const timeout = options.commandTimeoutMs ?? 1000;
    const maxDelay = options.maxReconnectDelayMs ?? 2000;
    const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxDelay);
    const auth = { ...(options.username ? { username: options.username } : {}), ...(options.password ? { password: options.password } : {}) };
    let clients: (readonly [Client, string])[];
    if (options.sentinel) {
      // One node-redis Sentinel object: it asks the sentinels for the primary, follows a
      // failover, and keeps its own pub/sub connection (resubscribed on a topology change).
      this.where = `redis sentinel "${options.sentinel.name}" at ${options.sentinel.nodes.join(',')}`;
      const sentinel = createSentinel({
        name: options.sentinel.name,
        sentinelRootNodes: options.sentinel.nodes.map(hostPort),
        nodeClientOptions: { ...auth, disableOfflineQueue: true, socket: { connectTimeout: timeout, reconnectStrategy } },
        sentinelClientOptions: { socket: { connectTimeout: timeout, reconnectStrategy } },
        commandOptions: { timeout },
      });
      this.commands = sentinel as unknown as Client;
      this.subscriber = this.commands;
      this.raw = (args) => sentinel.sendCommand(false, args);
      clients = [[this.commands, 'sentinel']];
    } else {
      const url = new URL(options.url!);
      this.where = `redis at ${url.host}`;
      const tls = url.protocol === 'rediss:';
      this.commands = createClient({
        url: options.url,
        ...auth,
        disableOfflineQueue: true,
        commandOptions: { timeout },
        socket: { connectTimeout: timeout, reconnectStrategy, ...(tls ? { tls: true as const, ...(options.ca ? { ca: options.ca } : {}) } : {}) },
      }) as unknown as Client;
      this.subscriber = this.commands.duplicate();
      this.raw = (args) => this.commands.sendCommand(args);
      clients = [
        [this.commands, 'commands'],
        [this.subscriber, 'subscriber'],
      ];
    }
    for (const [client, role] of clients) {
      client.on('error', (error: unknown) => this.onError(role, error));
      client.on('ready', () => {
        if (client === this.subscriber) void this.subscribePending();
        this.changed();
      });
      client.on('end', () => this.changed());
      client.on('reconnecting', () => this.changed());
      client.connect().catch((error: unknown) => this.onError(role, error));
    }
  }

  /** A raw command on the command connection (a plain client and a Sentinel take it differently). */
  private readonly raw: (args: string[]) => Promise<unknown>;

  /** Both connections are up: commands can be sent and announcements heard. */
  get connected(): boolean {
    return this.commands.isReady && this.subscriber.isReady;
  }

  async read(session: string): Promise<FleetRecord | undefined> {
    const keys = this.keys(session);
    const fields = (await this.run('read', () => this.commands.hGetAll(keys.current))) as Record<string, string>;
    if (!fields.generation || !fields.cookie) return undefined;
    return {
      generation: Number(fields.generation),
      cookie: fields.cookie,
      expiresAt: Number(fields.expires_at),
      issuedAt: Number(fields.issued_at),
      issuedBy: fields.issued_by ?? '',
      at: Number(fields.at),
    };
  }

  async acquire(session: string, ttlMs: number): Promise<FleetLock | undefined> {
    const keys = this.keys(session);
    const token = randomBytes(16).toString('hex');
    const takenAt = Date.now();
    const reply = await this.run('lock', () => this.raw(['SET', keys.lock, token, 'NX', 'PX', String(Math.ceil(ttlMs))]));
    if (String(reply) !== 'OK') return undefined;
    return new RenewingLock(
      token,
      ttlMs,
      {
        renew: async (t, ttl) => Number(await this.run('renew the lock', () => this.commands.eval(RENEW_SCRIPT, { keys: [keys.lock], arguments: [t, String(Math.ceil(ttl))] }))) === 1,
        release: async (t) => void (await this.run('release the lock', () => this.commands.eval(RELEASE_SCRIPT, { keys: [keys.lock], arguments: [t] }))),
      },
      takenAt,
    );
  }

  async publish(session: string, record: FleetRecord): Promise<PublishResult> {
    const keys = this.keys(session);
    const args = [record.generation, record.cookie, record.expiresAt, record.issuedAt, record.issuedBy, record.at].map(String);
    const reply = (await this.run('publish', () => this.commands.eval(PUBLISH_SCRIPT, { keys: [keys.current], arguments: [...args, keys.channel] }))) as [number, number];
    return { accepted: Number(reply[0]) === 1, current: Number(reply[1]) };
  }

  async subscribe(session: string, listener: GenerationListener): Promise<void> {
    const { channel } = this.keys(session);
    const onMessage = (message: string) => {
      const generation = Number(message);
      if (Number.isSafeInteger(generation) && generation > 0) listener(generation);
    };
    this.channels.set(channel, onMessage);
    // While offline the subscription waits for the subscriber's next "ready"; node-redis itself
    // restores confirmed subscriptions after a reconnect.
    if (this.subscriber.isReady) await this.subscribePending();
  }

  onConnection(listener: ConnectionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...new Set([this.commands, this.subscriber])].map((c) => (c.isOpen ? c.close().catch(() => c.destroy()) : undefined)));
  }

  /** Subscribes every channel asked for and not yet confirmed; a failure is retried on the next "ready". */
  private async subscribePending(): Promise<void> {
    for (const [channel, onMessage] of this.channels) {
      if (this.subscribed.has(channel)) continue;
      this.subscribed.add(channel);
      try {
        await this.subscriber.subscribe(channel, onMessage);
      } catch (error) {
        this.subscribed.delete(channel);
        this.onError('subscriber', error);
      }
    }
  }

  private keys(session: string): SessionKeys {
    return sessionKeys(this.options.keyPrefix, session);
  }

  /** Runs a command, turning every failure into one ClusterUnavailableError line. */
  private async run<T>(what: string, command: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ClusterUnavailableError(`${this.where}: cannot ${what}: the store is closed`);
    if (!this.commands.isReady) throw new ClusterUnavailableError(`${this.where}: cannot ${what}: not connected`);
    try {
      return await command();
    } catch (error) {
      throw new ClusterUnavailableError(`${this.where}: cannot ${what}: ${describe(error)}`, { cause: error });
    }
  }

  private changed(): void {
    const now = this.connected;
    if (now === this.wasConnected || this.closed) return;
    this.wasConnected = now;
    if (now) this.log.info(`connected to ${this.where}`);
    else this.log.warn(`lost ${this.where}; serving the current cookie meanwhile`);
    for (const listener of this.listeners) listener(now);
  }

  /** Why the last connection attempt failed, for one-shot commands (`status`, `check`). */
  lastProblem: string | undefined;

  private onError(role: string, error: unknown): void {
    if (this.closed) return;
    this.lastProblem = describe(error);
    this.log.debug({ role, reason: describe(error) }, `${this.where}: connection error`);
    this.changed();
  }
}

/** One line for a client error: its class and message (node-redis messages carry no password). */
function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}`;
  return String(error);
}
