/**
 * `session-refresher run`: wires the daemon together. Session runners keep each session fresh;
 * the fallback server replays nginx's 401s; the admin server answers /healthz and /metrics;
 * watches follow password files, includes and the config. SIGTERM/SIGINT drain and exit 0;
 * SIGHUP re-reads the configuration (kept as it was when the new one is invalid).
 */
import { chmod, unlink } from 'node:fs/promises';
import type http from 'node:http';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loadFromOptions, type GlobalOptions } from '../commands/context.js';
import type { AnySessionConfig, Config } from '../config/schema.js';
import { sessionSecret } from '../credentials/secret.js';
import { ConfigError, ExitCode, RefresherError, describeSystemError, hasCode, type ExitCodeValue } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { ensureFallbackKey, fallbackKeyPath, keyChecker } from '../nginx/fallback-key.js';
import { createReloader, type Reloader } from '../nginx/reload.js';
import { defaultDeps } from '../refresh/pipeline.js';
import { registerFleetMetrics } from '../fleet/metrics.js';
import { SessionFleet } from '../fleet/session-fleet.js';
import type { FleetStore } from '../fleet/store.js';
import { createAdminServer } from './admin.js';
import { createFallbackServer } from './fallback.js';
import { assertAllowed, parseListen, showListen, type ListenAddress } from './listen.js';
import { createMetrics } from './metrics.js';
import { rateLimitedReloader } from './reload-gate.js';
import { SessionRunner } from './session-runner.js';
import { waitForGeneration } from './verify.js';
import { startWatching, type Watch } from './watch.js';

/** Mode of a unix socket the daemon listens on: its user and group (nginx's workers') only. */
export const SOCKET_MODE = 0o660;

/** Binds `server`; a busy or forbidden address is a configuration problem. */
async function listen(server: http.Server, address: ListenAddress, key: string): Promise<void> {
  if (address.kind === 'unix') await unlink(address.path).catch((e: unknown) => (hasCode(e, 'ENOENT') ? undefined : Promise.reject(e)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (address.kind === 'unix') {
      // The socket is created inside listen(): a umask makes it 0660 from its first instant,
      // so no other user can connect between its creation and a chmod.
      const previous = process.umask(0o777 & ~SOCKET_MODE);
      try {
        server.listen(address.path, done);
      } finally {
        process.umask(previous);
      }
    } else server.listen(address.port, address.host, done);
  }).catch((error: unknown) => {
    const hint = address.kind === 'unix' && hasCode(error, 'ENOENT', 'EACCES') ? `; create ${dirname(address.path)} for the service (systemd: RuntimeDirectory=session-refresher) or set daemon.${key}` : '';
    throw new ConfigError([`daemon.${key}: cannot listen on ${showListen(address)}: ${describeSystemError(error)}${hint}`], 'daemon', { cause: error });
  });
  if (address.kind === 'unix') await chmod(address.path, SOCKET_MODE);
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Runs until SIGTERM/SIGINT; returns the exit code. Throws RefresherError when it cannot start. */
export async function runDaemon(options: GlobalOptions): Promise<ExitCodeValue> {
  let { config, source } = loadFromOptions(options);
  const root = await createLogger(options.verbose ? 'debug' : config.log_level);
  const log = root.child({ component: 'daemon' });
  const fallbackAddress = parseListen(config.daemon.listen);
  const adminAddress = parseListen(config.daemon.admin_listen);
  assertAllowed(fallbackAddress, 'listen', config.daemon.allow_non_loopback);
  assertAllowed(adminAddress, 'admin_listen', config.daemon.allow_non_loopback);

  /** With `cluster:`: one store for the daemon's life (a changed section takes a restart). */
  let store: FleetStore | undefined;
  /** This node's name in the store (`cluster.node_id`, else the host name). */
  let fleetNode = '';
  let runners = new Map<string, SessionRunner>();
  let sessions = new Map<string, AnySessionConfig>();
  const metrics = createMetrics(
    (name) => runners.get(name)?.view,
    () => [...runners.keys()],
  );
  if (config.cluster) registerFleetMetrics(metrics.registry, () => [...runners.values()].map((r) => ({ session: r.name, status: r.fleet })));

  let reloader: Reloader | undefined;
  /** Stops runners; a routine reload waiting for the reload cap is given up (it stays owed). */
  const stopRunners = async (stopping: SessionRunner[]): Promise<void> => {
    const stopped = stopping.map((r) => r.stop());
    reloader?.close?.();
    await Promise.all(stopped);
  };
  const build = (cfg: Config): Map<string, SessionRunner> => {
    reloader = rateLimitedReloader(createReloader(cfg.nginx), cfg.daemon.max_reloads_per_minute);
    const deps = { ...defaultDeps(cfg, root.child({ component: 'refresh' })), reloader };
    return new Map(
      cfg.sessions.map((session) => [
        session.name,
        new SessionRunner({
          config: cfg,
          session,
          deps,
          metrics,
          log: root.child({ component: 'session', session: session.name }),
          random: Math.random,
          verify: session.verify_url ? (generation) => verifyReload(session, generation, cfg, root.child({ component: 'verify' })) : undefined,
          fleet: store && cfg.cluster ? new SessionFleet({ config: cfg, session, deps, store, nodeId: fleetNode, log: root.child({ component: 'fleet', session: session.name }), random: Math.random }) : undefined,
        }),
      ]),
    );
  };

  // The key nginx proves itself with; made here on a first start (nginx then needs a reload to send it).
  const keyFile = fallbackKeyPath(config);
  const fallbackKey = await ensureFallbackKey(keyFile);
  if (fallbackKey.created) log.warn({ fallback_key_file: keyFile }, `created the fallback key ${keyFile}: nginx sends it after its next reload, and the fallback refuses nginx's requests until then; include it in location @session_refresh (nginx-snippet does)`);
  const fallback = createFallbackServer({
    runner: (name) => runners.get(name),
    backendUrl: (name) => sessions.get(name)?.url,
    metrics,
    log: root.child({ component: 'fallback' }),
    allowNonLoopback: config.daemon.allow_non_loopback,
    keyMatches: keyChecker(fallbackKey.key),
    replayTimeoutMs: config.daemon.replay_timeout * 1000,
  });
  const admin = createAdminServer(() => [...runners.values()], metrics);
  await listen(fallback.server, fallbackAddress, 'listen');
  try {
    await listen(admin, adminAddress, 'admin_listen');
  } catch (error) {
    await closeServer(fallback.server);
    throw error;
  }

  let watcher: Watch | undefined;
  const watchConfig = async (cfg: Config): Promise<void> => {
    await watcher?.close();
    const passwordFiles = new Map<string, string[]>();
    for (const s of cfg.sessions) {
      const file = sessionSecret(s).file;
      if (file) passwordFiles.set(file, [...(passwordFiles.get(file) ?? []), s.name]);
    }
    watcher = await startWatching(
      { passwordFiles, includes: new Map(cfg.sessions.map((s) => [s.include, s.name])), configFile: source === 'environment' ? undefined : source },
      {
        passwordChanged: (name) => void runners.get(name)?.passwordChanged(),
        includeChanged: (name) => void runners.get(name)?.includeChanged(),
        configChanged: () => void reconfigure('config file changed'),
      },
    );
  };

  const apply = async (cfg: Config): Promise<void> => {
    await stopRunners([...runners.values()]);
    sessions = new Map(cfg.sessions.map((s) => [s.name, s]));
    runners = build(cfg);
    // Start every session; a failing one retries on its own schedule and shows in /healthz.
    await Promise.all([...runners.values()].map((r) => r.start()));
    await watchConfig(cfg);
  };

  let reconfiguring = Promise.resolve();
  const reconfigure = (why: string): Promise<void> =>
    (reconfiguring = reconfiguring.then(async () => {
      let next: { config: Config; source: string };
      try {
        next = loadFromOptions(options);
      } catch (error) {
        const message = error instanceof RefresherError ? error.message : describeSystemError(error);
        log.error({ why }, `configuration not applied, keeping the running one: ${message}`);
        return;
      }
      if (next.config.daemon.listen !== config.daemon.listen || next.config.daemon.admin_listen !== config.daemon.admin_listen || fallbackKeyPath(next.config) !== keyFile) {
        log.warn('daemon.listen, daemon.admin_listen and daemon.fallback_key_file changes take effect after a restart');
      }
      config = next.config;
      source = next.source;
      await apply(config);
      log.info({ why, sessions: config.sessions.map((s) => s.name) }, 'configuration applied');
    }));

  try {
    if (config.cluster) {
      // Loaded only with cluster:, so a lone node never loads the Redis client.
      const { nodeId, openFleetStore } = await import('../fleet/factory.js');
      fleetNode = nodeId(config.cluster);
      store = await openFleetStore(config.cluster, root);
    }
  } catch (error) {
    await Promise.all([closeServer(fallback.server), closeServer(admin)]);
    throw error;
  }
  await apply(config);
  log.info({ listen: showListen(fallbackAddress), admin_listen: showListen(adminAddress), sessions: [...runners.keys()] }, 'ready');

  const onHup = () => void reconfigure('SIGHUP');
  process.on('SIGHUP', onHup);
  // Listeners stay for the whole shutdown: with none left, a library's exit hook (signal-exit,
  // loaded by the lock library) re-raises the signal and ends the process before it has drained.
  const signal = await new Promise<string>((resolve) => {
    process.on('SIGTERM', () => resolve('SIGTERM'));
    process.on('SIGINT', () => resolve('SIGINT'));
  });
  process.off('SIGHUP', onHup);
  // A SIGHUP during shutdown must neither re-read the config nor, with no listener, end the process.
  const ignoreHup = () => log.info('SIGHUP ignored: shutting down');
  process.on('SIGHUP', ignoreHup);

  log.info({ signal, in_flight: fallback.inFlight() }, 'shutting down: no new requests; waiting for replays in flight');
  const closing = Promise.all([closeServer(fallback.server), closeServer(admin)]);
  const drained = await Promise.race([fallback.drained().then(() => true), delay(config.daemon.shutdown_timeout * 1000).then(() => false)]);
  if (!drained) log.warn({ in_flight: fallback.inFlight() }, `replays still running after ${config.daemon.shutdown_timeout}s: closing them`);
  fallback.server.closeAllConnections();
  admin.closeAllConnections();
  await reconfiguring;
  await watcher?.close();
  await stopRunners([...runners.values()]);
  await store?.close();
  await closing;
  log.info('stopped');
  return ExitCode.OK;
}

async function verifyReload(session: AnySessionConfig, generation: number, config: Config, log: Logger): Promise<boolean> {
  const ok = await waitForGeneration(session.verify_url!, generation, config.daemon.verify_timeout * 1000);
  if (!ok) log.child({ session: session.name }).warn({ generation, verify_url: session.verify_url }, `nginx did not serve generation ${generation} within ${config.daemon.verify_timeout}s after the reload`);
  return ok;
}
