/** The two SVG charts: latency over time during rotation, and during a 401 storm. */
import type { RotationOutcome } from './figures/rotation.js';
import type { StormOutcome, Timeline } from './figures/storm.js';
import { bucketed, renderSvg, type Chart } from './lib/svg.js';

const P50 = '#1f77b4';
const P99 = '#d62728';
const RELOAD = '#2ca02c';

/** Figure 4's first run: probe latency per 250 ms, with a line at every reload. */
export function rotationSvg(r: RotationOutcome, seconds: number): string {
  const panel = (title: string, run: RotationOutcome['chart']['ours']): Chart => ({
    title,
    subtitle: `wrk load (16 connections) + probe (2 keep-alive loops); p50 and p99 of the probe per 250 ms; ${seconds} s`,
    xLabel: 'seconds',
    yLabel: 'latency, ms (log)',
    logY: true,
    xMax: seconds,
    series: [
      { label: 'p50', color: P50, points: bucketed(run.samples, 250, 50) },
      { label: 'p99', color: P99, points: bucketed(run.samples, 250, 99) },
    ],
    markers: [{ x: run.actionsAt.map((t) => t / 1000), label: 'reload asked', color: RELOAD }],
  });
  return renderSvg([panel('refresh-now --force every 2 s (login, write, nginx -t, SIGHUP)', r.chart.ours), panel('baseline: nginx -s reload every 2 s', r.chart.nginx)]);
}

/** Figure 3's median run: the open-loop probe's latency per 100 ms, burst start marked. */
export function stormSvg(s: StormOutcome): string {
  const end = (t: Timeline) => Math.max(...t.probe.map((p) => p.start)) / 1000;
  const xMax = Math.ceil(Math.max(end(s.chart.storm), end(s.chart.direct)) * 2) / 2;
  const panel = (title: string, t: Timeline): Chart => ({
    title,
    subtitle: 'probe: one request every 10 ms, own connection; p50 and max per 100 ms by start time',
    xLabel: 'seconds',
    yLabel: 'latency, ms (log)',
    logY: true,
    xMax,
    series: [
      { label: 'p50', color: P50, points: bucketed(t.probe, 100, 50) },
      { label: 'max', color: P99, points: bucketed(t.probe, 100, 100) },
    ],
    markers: [{ x: [t.burstAt / 1000], label: '1,000 requests sent', color: RELOAD }],
  });
  return renderSvg([panel('401 storm: session invalidated, then 1,000 requests at once', s.chart.storm), panel('same burst with a valid session (direct path)', s.chart.direct)]);
}
