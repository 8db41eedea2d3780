/**
 * The daemon's Prometheus metrics (prom-client), on a registry of its own. Labels carry session
 * names and outcomes, never a secret.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Why a refresh ran. */
export type Trigger = 'start' | 'schedule' | 'fallback' | 'probe' | 'watch' | 'manual';

export interface Metrics {
  registry: Registry;
  /** Logins by session and result (ok, rejected, unavailable, refused, protocol, error). */
  logins: Counter<'session' | 'result'>;
  /** Renewals: a new cookie from `GET /_session`, without the password. */
  renewals: Counter<'session'>;
  /** Validity probes (`GET /_session`) by trigger (unauthorized, periodic) and result (alive, dead, unknown). */
  probes: Counter<'session' | 'trigger' | 'result'>;
  /** Refresh passes by session and trigger. */
  refreshes: Counter<'session' | 'trigger'>;
  /**
   * Fallback replays by session and outcome (replayed, stale_generation, replayed_after_retry,
   * not_session, unauthorized_again, session_loop, refresh_failed, backend_error, bad_request).
   */
  replays: Counter<'session' | 'outcome'>;
  /** Requests refused at the fallback's door (reason: key, the install's key missing or wrong; peer, not loopback). */
  fallbackForbidden: Counter<'reason'>;
  /** nginx reloads by result (ok, not_running, failed, unverified). */
  reloads: Counter<'result'>;
  /** Seconds until the current cookie expires (negative once expired). */
  secondsLeft: Gauge<'session'>;
  /** Current generation per session. */
  generation: Gauge<'session'>;
  /** Time from receiving a rejected request to the end of its replay. */
  fallbackLatency: Histogram<'session'>;
}

/** What the gauges read at scrape time: a session's generation and cookie expiry as last seen on disk. */
export type SessionView = (session: string) => { generation: number; expiresAt: number | undefined } | undefined;

/** Creates the metrics; `secondsLeft` and `generation` are read at scrape time from `view`. */
export function createMetrics(view: SessionView, sessions: () => string[]): Metrics {
  const registry = new Registry();
  // The event-loop lag histogram samples on a timer: at prom-client's default 10 ms, that
  // timer alone kept an idle daemon at about 1% of a core. 100 ms still sees a stalled loop.
  collectDefaultMetrics({ register: registry, prefix: 'session_refresher_', eventLoopMonitoringPrecision: 100 });
  const p = 'session_refresher_';
  return {
    registry,
    logins: new Counter({ name: `${p}logins_total`, help: 'Logins to the backend by result.', labelNames: ['session', 'result'], registers: [registry] }),
    renewals: new Counter({ name: `${p}renewals_total`, help: 'New cookies obtained by renewal (GET /_session), without the password.', labelNames: ['session'], registers: [registry] }),
    probes: new Counter({ name: `${p}probes_total`, help: 'Session validity probes (GET /_session) by trigger and result.', labelNames: ['session', 'trigger', 'result'], registers: [registry] }),
    refreshes: new Counter({ name: `${p}refreshes_total`, help: 'Refresh passes by trigger.', labelNames: ['session', 'trigger'], registers: [registry] }),
    replays: new Counter({ name: `${p}replays_total`, help: 'Requests handled by the 401 fallback, by outcome.', labelNames: ['session', 'outcome'], registers: [registry] }),
    fallbackForbidden: new Counter({ name: `${p}fallback_forbidden_total`, help: 'Requests refused by the 401 fallback because they did not come from nginx (missing or wrong key, non-loopback peer).', labelNames: ['reason'], registers: [registry] }),
    reloads: new Counter({ name: `${p}nginx_reloads_total`, help: 'nginx reloads by result.', labelNames: ['result'], registers: [registry] }),
    secondsLeft: new Gauge({
      name: `${p}cookie_seconds_left`,
      help: 'Seconds until the current session cookie expires.',
      labelNames: ['session'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of sessions()) {
          const at = view(s)?.expiresAt;
          if (at !== undefined) this.set({ session: s }, Math.round((at - Date.now()) / 1000));
        }
      },
    }),
    generation: new Gauge({
      name: `${p}generation`,
      help: 'Generation of the include on disk, whoever wrote it (the daemon or refresh-now).',
      labelNames: ['session'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of sessions()) {
          const g = view(s)?.generation;
          if (g !== undefined) this.set({ session: s }, g);
        }
      },
    }),
    fallbackLatency: new Histogram({
      name: `${p}fallback_duration_seconds`,
      help: 'Time to handle a request sent to the 401 fallback, replay included.',
      labelNames: ['session'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
}

/** The login result label for an error code (or ok). */
export function loginResult(code: string | undefined): string {
  switch (code) {
    case undefined:
      return 'ok';
    case 'ERR_CREDENTIALS_REJECTED':
      return 'rejected';
    case 'ERR_BACKEND_UNAVAILABLE':
      return 'unavailable';
    case 'ERR_COOKIE_REFUSED':
      return 'refused';
    case 'ERR_PROTOCOL':
      return 'protocol';
    default:
      return 'error';
  }
}
