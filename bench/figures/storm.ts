/**
 * Figure 3, the 401 storm: 1,000 requests started at once right after the backend dropped the
 * session. Counts logins at the backend (from pouchdb-server's own log), non-2xx answers, p99,
 * and throughput (requests / wall time of the burst) of this fallback path vs the same burst
 * with a valid session (the direct path), measured in the same run. The daemon's RSS is
 * sampled every 20 ms during each storm for figure 6.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { Couch } from '../../test/helpers/couch.js';
import type { Daemon } from '../../test/helpers/daemon.js';
import { burst, clockMs, startOpenProbe, type Sample } from '../lib/client.js';
import { rssSampler, waitForChildren } from '../lib/proc.js';
import { fixed, int, ms, type BenchContext, type FigureResult } from '../lib/report.js';
import type { BenchStack } from '../lib/stack.js';
import { median, percentile } from '../lib/stats.js';
import { REQUEST_PATH } from './paths.js';
import { eventsSince } from './recovery.js';

export const STORM = 1000;

interface BurstResult {
  wallMs: number;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  socketErrors: number;
  /** Count per status ("0 ECONNRESET" for a socket error). */
  statuses: Record<string, number>;
}

interface RunResult {
  direct: BurstResult;
  storm: BurstResult & {
    logins: number;
    daemonPeakRssKiB: number;
    probeErrors: number;
    /** The daemon's warn/error lines and nginx's [error] lines during the storm, counted by message. */
    daemonProblems: Record<string, number>;
    nginxErrors: Record<string, number>;
  };
}

/** A burst with a background probe around it: the probe's latency over time is the chart. */
export interface Timeline {
  /** Probe requests (one started every 10 ms, a new connection each), ms since the probe started. */
  probe: Sample[];
  /** When the burst started (and, for the storm, the secret was rotated just before). */
  burstAt: number;
}

export interface StormOutcome {
  figure: FigureResult;
  /** The median run's timelines, for the chart. */
  chart: { direct: Timeline; storm: Timeline };
  daemonPeakRssKiB: number[];
}

function summarize(samples: Sample[], wallMs: number): BurstResult {
  const lat = samples.map((s) => s.ms);
  return {
    wallMs,
    rps: (samples.length / wallMs) * 1000,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    non2xx: samples.filter((s) => s.status !== 0 && (s.status < 200 || s.status > 299)).length,
    socketErrors: samples.filter((s) => s.status === 0).length,
    statuses: samples.reduce<Record<string, number>>((m, s) => {
      const k = s.status === 0 ? `0 ${s.error ?? ''}`.trim() : s.body ? `${s.status} ${s.body.trim()}` : String(s.status);
      m[k] = (m[k] ?? 0) + 1;
      return m;
    }, {}),
  };
}

/** Runs figure 3 against the stack's daemon. */
export async function storm(ctx: BenchContext, stack: BenchStack, couch: Couch, daemon: Daemon): Promise<StormOutcome> {
  const url = stack.nginx.url + REQUEST_PATH;
  const runs: RunResult[] = [];
  const charts: { direct: Timeline; storm: Timeline }[] = [];
  /** Runs `before` then a burst, with an open-loop probe from 0.5 s before to 0.5 s after. */
  const withProbe = async (before: () => Promise<void>) => {
    const t0 = clockMs();
    const probe = startOpenProbe(url, { everyMs: 10, maxMs: 30_000, t0 });
    await delay(500);
    await before();
    const burstAt = clockMs() - t0;
    const result = await burst(url, STORM, t0);
    await delay(500);
    return { result, timeline: { probe: await probe.stop(), burstAt } };
  };
  let generation = Number(await stack.nginx.generation());
  for (let r = 0; r < ctx.runs; r++) {
    // The cookie must be older than min_refresh_interval (0.05 s) and old workers gone.
    await delay(200);
    await waitForChildren(stack.nginx.pid, 1);
    const { result: direct, timeline: directLine } = await withProbe(async () => undefined);
    await couch.settle();
    const before = couch.logins();
    const mark = daemon.mark();
    const errorLogBefore = (await readFile(stack.nginx.errorLog, 'utf8').catch(() => '')).length;
    const sampler = rssSampler(daemon.child.pid!);
    const { result: fallback, timeline: stormLine } = await withProbe(() => couch.rotateSecret());
    const peak = sampler.stop();
    await couch.settle();
    const logins = couch.logins() - before;
    const daemonProblems: Record<string, number> = {};
    for (const e of eventsSince(daemon, mark)) {
      if (typeof e.level === 'number' ? e.level >= 40 : e.level === 'warn' || e.level === 'error') {
        const k = `${String(e.level)} ${String(e.msg)}${e.outcome ? ` (${String(e.outcome)})` : ''}${e.code ? ` ${String(e.code)}` : ''}`;
        daemonProblems[k] = (daemonProblems[k] ?? 0) + 1;
      }
    }
    const nginxErrors: Record<string, number> = {};
    for (const line of (await readFile(stack.nginx.errorLog, 'utf8').catch(() => '')).slice(errorLogBefore).split('\n')) {
      const m = /\[(error|crit|alert|emerg)\] \d+#\d+: (?:\*\d+ )?([^,]+)/.exec(line);
      if (m) nginxErrors[`${m[1]} ${m[2]}`] = (nginxErrors[`${m[1]} ${m[2]}`] ?? 0) + 1;
    }
    generation++;
    await stack.nginx.waitForGeneration(generation).catch(() => undefined);
    generation = Number(await stack.nginx.generation());
    const run: RunResult = { direct: summarize(direct.samples, direct.wallMs), storm: { ...summarize(fallback.samples, fallback.wallMs), logins, daemonPeakRssKiB: peak, probeErrors: stormLine.probe.filter((p) => p.status < 200 || p.status > 299).length, daemonProblems, nginxErrors } };
    runs.push(run);
    charts.push({ direct: directLine, storm: stormLine });
    ctx.say(`  fig 3 run ${r + 1}: direct ${int(run.direct.rps)} req/s p99 ${ms(run.direct.p99)}; storm ${int(run.storm.rps)} req/s p99 ${ms(run.storm.p99)}, ${logins} login(s), ${run.storm.non2xx} non-2xx, ${run.storm.socketErrors} socket errors${run.storm.non2xx + run.storm.socketErrors > 0 ? ` ${JSON.stringify({ statuses: run.storm.statuses, daemon: daemonProblems, nginx: nginxErrors })}` : ''}`);
  }
  const med = (f: (r: RunResult) => number) => median(runs.map(f));
  const ratio = med((r) => r.storm.rps / r.direct.rps);
  const maxLogins = Math.max(...runs.map((r) => r.storm.logins));
  const non2xx = runs.reduce((n, r) => n + r.storm.non2xx + r.storm.socketErrors + r.storm.probeErrors, 0);
  const directBad = runs.reduce((n, r) => n + r.direct.non2xx + r.direct.socketErrors, 0);
  // What the failed storm requests got, e.g. "502 replay failed: socket hang up x52".
  const why = new Map<string, number>();
  for (const r of runs) {
    for (const [k, v] of Object.entries(r.storm.statuses)) {
      if (/^2\d\d$/.test(k)) continue;
      const reason = /"reason":"(?:[^"]*?failed: )?([^"]*)"/.exec(k)?.[1];
      const label = `${k.split(' ')[0]}${reason ? ` "${reason}"` : k.startsWith('0 ') ? ` ${k.slice(2)}` : ''}`;
      why.set(label, (why.get(label) ?? 0) + v);
    }
  }
  const whyText = [...why].map(([k, v]) => `${k} ×${v}`).join(', ');
  // The chart shows the run whose storm wall time is the median.
  const order = runs.map((r, i) => [r.storm.wallMs, i] as const).sort((a, b) => a[0] - b[0]);
  const chosen = order[Math.floor(order.length / 2)]![1];
  return {
    figure: {
      id: 3,
      title: `401 storm: ${int(STORM)} concurrent requests after invalidation`,
      tools: `Node http client, ${int(STORM)} requests started at once, one connection each; logins from pouchdb-server's log`,
      rows: [
        { figure: '3 storm', measure: 'logins per storm (max over runs)', value: String(maxLogins), goal: '1', met: maxLogins === 1 },
        { figure: '3 storm', measure: 'non-2xx + socket errors (all storms)', value: `${non2xx}${whyText ? ` (${whyText})` : ''}`, goal: '0', met: non2xx === 0 },
        { figure: '3 storm', measure: 'p99: fallback path / direct path', value: `${ms(med((r) => r.storm.p99))} / ${ms(med((r) => r.direct.p99))}` },
        { figure: '3 storm', measure: 'throughput: fallback / direct', value: `${fixed(ratio, 2)} (${int(med((r) => r.storm.rps))} / ${int(med((r) => r.direct.rps))} req/s)` },
      ],
      notes: [
        `${runs.length} run(s); each: a burst with a valid session (direct), then the secret rotated and the same burst (fallback). Throughput = requests / wall time of the burst.`,
        `Errors in the direct bursts: ${directBad}. A probe sends one more request every 10 ms across each burst, for the chart; its requests count in the logins and errors too.`,
      ],
      data: { requests: STORM, runs },
    },
    chart: charts[chosen]!,
    daemonPeakRssKiB: runs.map((r) => r.storm.daemonPeakRssKiB),
  };
}
