/**
 * Figure 6, the daemon's footprint: RSS and CPU while idle (after its first login, nothing to
 * do but wait for its schedule and watch files), and its peak RSS during figure 3's storms.
 * Read from /proc/<pid>/status (VmRSS) and /proc/<pid>/stat (utime + stime). Memory differs
 * between Node.js versions, so every RSS figure names the one the daemon ran on (the bench's own:
 * the daemon is spawned with process.execPath).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { clockMs } from '../lib/client.js';
import { cpuSeconds, rssKiB } from '../lib/proc.js';
import { fixed, type BenchContext, type FigureResult } from '../lib/report.js';
import { median } from '../lib/stats.js';
import { unitNodeOptions } from '../lib/unit.js';

/** How long after the first login the idle windows start. */
const SETTLE_MS = 15_000;

export interface Idle {
  windowSeconds: number;
  rssKiB: number[];
  /** The anonymous part of it (heap, stacks, buffers): what the daemon itself holds. */
  anonKiB: number[];
  /** % of one core, per window. */
  cpuPercent: number[];
}

/** Measures the idle daemon over `ctx.runs` windows. */
export async function measureIdle(ctx: BenchContext, pid: number): Promise<Idle> {
  const windowSeconds = ctx.quick ? 3 : 5;
  const idle: Idle = { windowSeconds, rssKiB: [], anonKiB: [], cpuPercent: [] };
  // Idle means settled: for about ten seconds after its start V8 still compiles lazily and runs
  // its post-start collections (1-3% of a core here), which says nothing of the daemon at rest.
  await delay(SETTLE_MS);
  for (let i = 0; i < ctx.runs; i++) {
    const c0 = cpuSeconds(pid);
    const t0 = clockMs();
    await delay(windowSeconds * 1000);
    idle.cpuPercent.push(((cpuSeconds(pid) - c0) / ((clockMs() - t0) / 1000)) * 100);
    idle.rssKiB.push(rssKiB(pid) ?? Number.NaN);
    idle.anonKiB.push(rssKiB(pid, 'RssAnon') ?? Number.NaN);
  }
  ctx.say(`  fig 6 idle: RSS ${fixed(median(idle.rssKiB) / 1024, 1)} MiB on Node ${process.version}, CPU ${fixed(median(idle.cpuPercent), 2)} %`);
  return idle;
}

/** Figure 6 from the idle windows and the storm peaks. */
export function daemonResources(idle: Idle, stormPeakKiB: number[]): FigureResult {
  const mib = (kib: number) => `${fixed(kib / 1024, 1)} MiB`;
  return {
    id: 6,
    title: 'Daemon: memory and CPU',
    tools: `/proc/<pid>/status VmRSS, /proc/<pid>/stat utime+stime; daemon on Node ${process.version}`,
    rows: [
      { figure: '6 daemon', measure: `RSS idle, Node ${process.version}`, value: mib(median(idle.rssKiB)), goal: '<= 55 MiB', met: median(idle.rssKiB) <= 55 * 1024 },
      { figure: '6 daemon', measure: 'of it anonymous (heap, buffers; the rest is pages of the node binary and libraries, shared)', value: mib(median(idle.anonKiB)) },
      { figure: '6 daemon', measure: `RSS peak during a 1,000-request storm, Node ${process.version}`, value: mib(median(stormPeakKiB)), goal: '<= 100 MiB', met: median(stormPeakKiB) <= 100 * 1024 },
      { figure: '6 daemon', measure: 'CPU idle (% of one core)', value: `${fixed(median(idle.cpuPercent), 2)} %`, goal: '< 0.5 %', met: median(idle.cpuPercent) < 0.5 },
    ],
    notes: [`The daemon runs with the shipped unit's NODE_OPTIONS (${unitNodeOptions() || 'none'}). Idle: ${idle.rssKiB.length} window(s) of ${idle.windowSeconds} s, from ${SETTLE_MS / 1000} s after the first login (the periodic probe runs in them); storm peak sampled every 20 ms; medians over runs.`],
    data: { node: process.version, idle, stormPeakKiB },
  };
}
