/**
 * The daemon's hook into the fleet for one session: the session runner asks it to run each
 * refresh pass, and it decides, through the coordinator, whether this node logs in (at the
 * fleet's next generation, then publishes) or installs the cookie another node published.
 * Cookies announced between passes are installed here too, and their reload jittered so the
 * fleet does not reload in the same millisecond.
 */
import type { AnySessionConfig, Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { RefreshDeps, RefreshOutcome } from '../refresh/pipeline.js';
import { connectedWithin } from './connected.js';
import { FleetCoordinator, type FleetStatus } from './coordinator.js';
import { installRecord } from './install-record.js';
import type { FleetRecord, FleetStore } from './store.js';

/** What the runner lends the fleet hook. */
export interface FleetRunner {
  /** The generation, cookie and expiry served now (read from disk). */
  current(): Promise<{ generation: number; cookie: string | undefined; expiresAt: number | undefined; valid: boolean }>;
  /** Reloads nginx for `generation` behind the caller. */
  reload(generation: number): void;
  /**
   * Runs an install of another node's record so that the runner's include watcher waits for it
   * (between the include and the state file the two disagree, which would read as a hand edit).
   */
  installing<T>(work: () => Promise<T>): Promise<T>;
}

/** One pass of the local pipeline; `generation` is the one a new cookie takes. */
export type LocalPass = (generation: number | undefined) => Promise<RefreshOutcome>;

/** The hook a SessionRunner takes (`RunnerContext.fleet`). */
export interface FleetHook {
  start(runner: FleetRunner): Promise<void>;
  stop(): void;
  /** Runs a pass the fleet's way: `failed` is the generation being replaced, `urgent` when it was refused. */
  refresh(failed: number, urgent: boolean, pass: LocalPass): Promise<RefreshOutcome>;
  status(): FleetStatus;
}

export interface SessionFleetOptions {
  config: Config;
  session: AnySessionConfig;
  deps: RefreshDeps;
  store: FleetStore;
  nodeId: string;
  log: Logger;
  random: () => number;
}

/** Most a reload of an announced generation is delayed, in ms (spread over the fleet). */
export const RELOAD_JITTER_MS = 200;

/** See the file comment. */
export class SessionFleet implements FleetHook {
  private coordinator: FleetCoordinator | undefined;
  private runner: FleetRunner | undefined;
  /** Set while a pass runs: an installed record's outcome goes to it instead of a reload here. */
  private adoptedInPass: RefreshOutcome | undefined;
  private inPass = false;

  constructor(private readonly options: SessionFleetOptions) {}

  async start(runner: FleetRunner): Promise<void> {
    const { config, session, store, nodeId, log } = this.options;
    const cluster = config.cluster!;
    this.runner = runner;
    this.coordinator = new FleetCoordinator({
      store,
      session: session.name,
      nodeId,
      lockTtlMs: cluster.lock_ttl * 1000,
      pollIntervalMs: cluster.poll_interval * 1000,
      waitTimeoutMs: cluster.wait_timeout * 1000,
      loneLoginIntervalMs: Math.max(config.daemon.min_refresh_interval, cluster.wait_timeout) * 1000,
      log,
      node: {
        served: async () => {
          const c = await runner.current();
          return { generation: c.generation, expiresAt: c.valid ? c.expiresAt : undefined };
        },
        apply: (record) => this.apply(record),
      },
    });
    // A store still connecting (a Sentinel asks the sentinels for the primary first) is given
    // up to wait_timeout before this node, with nothing to serve yet, would log in alone.
    if (!store.connected) {
      const up = await connectedWithin(store, cluster.wait_timeout * 1000);
      if (!up) log.warn({ waited_s: cluster.wait_timeout }, 'fleet: the store did not answer at start; going on alone until it does');
    }
    await this.coordinator.start();
  }

  stop(): void {
    this.coordinator?.stop();
  }

  status(): FleetStatus {
    return this.coordinator?.status() ?? { connected: this.options.store.connected, leader: undefined, storeGeneration: 0, lag: 0 };
  }

  async refresh(failed: number, urgent: boolean, pass: LocalPass): Promise<RefreshOutcome> {
    const coordinator = this.coordinator!;
    let outcome: RefreshOutcome | undefined;
    this.inPass = true;
    this.adoptedInPass = undefined;
    try {
      await coordinator.login(failed, urgent, async (generation) => {
        outcome = await pass(generation);
        return this.publishable();
      });
      if (this.adoptedInPass) return this.adoptedInPass;
      if (outcome) return outcome;
      // No pass was needed (the failed cookie was already replaced): report what is served.
      const current = await this.runner!.current();
      return { session: this.options.session.name, action: 'noop', reason: 'fleet', generation: current.generation, wrote: false, reloadOwed: false, reloaded: false, exitCode: 0 };
    } finally {
      this.inPass = false;
    }
  }

  /** The cookie served now, as a record to publish, when it is valid. */
  private async publishable(): Promise<FleetRecord | undefined> {
    const c = await this.runner!.current();
    if (!c.valid || !c.cookie || c.expiresAt === undefined) return undefined;
    const now = Date.now();
    return { generation: c.generation, cookie: c.cookie, expiresAt: c.expiresAt, issuedAt: now, issuedBy: this.options.nodeId, at: now };
  }

  private async apply(record: FleetRecord): Promise<void> {
    const { config, session, deps } = this.options;
    const install = () => installRecord(config, session, deps, record);
    const outcome = this.runner ? await this.runner.installing(install) : await install();
    if (this.inPass) {
      // The same record may be applied twice in a pass (an announcement and the wait both see
      // it); the second finds it installed: keep the outcome that owes the reload.
      if (!this.adoptedInPass?.reloadOwed) this.adoptedInPass = outcome;
      return;
    }
    if (!outcome.reloadOwed) return;
    const jitter = Math.floor(this.options.random() * RELOAD_JITTER_MS);
    setTimeout(() => this.runner?.reload(outcome.generation), jitter).unref();
  }
}
