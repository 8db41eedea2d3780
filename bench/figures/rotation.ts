/**
 * Figure 4, rotation under load: wrk keeps nginx busy while, every 2 s, either
 * `session-refresher refresh-now --force` runs (login, write, nginx -t, SIGHUP), or a plain
 * `nginx -s reload` does (the baseline: what any reload costs). Each run measures both, one
 * after the other, alternating which goes first. Counts come from wrk; latency over time from
 * a Node probe (2 keep-alive loops) running alongside.
 */
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { clockMs, startProbe, type Sample } from '../lib/client.js';
import { alternate } from '../lib/alternate.js';
import { int, ms, type BenchContext, type FigureResult } from '../lib/report.js';
import type { BenchStack } from '../lib/stack.js';
import { median, percentile } from '../lib/stats.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import { REQUEST_PATH } from './paths.js';

const EVERY_MS = 2_000;
const CONNECTIONS = 16;

interface Window {
  wrk: WrkResult;
  /** Reloads asked for, and how many of those failed (non-zero exit). */
  actions: number;
  actionFailures: number;
  /** SIGHUPs nginx logged during the window. */
  sighups: number;
  /** ms since the window started, when each action began. */
  actionsAt: number[];
  probe: { requests: number; errors: number; non2xx: number; p50: number; p99: number };
  samples: Sample[];
}

export interface RotationOutcome {
  figure: FigureResult;
  /** The first run's probe samples and action times, for the chart. */
  chart: { ours: { samples: Sample[]; actionsAt: number[] }; nginx: { samples: Sample[]; actionsAt: number[] } };
}

function run(argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', () => resolve(-1));
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve(code ?? -1);
    });
  });
}

async function loadWindow(stack: BenchStack, seconds: number, action: () => Promise<boolean>): Promise<Window> {
  const url = stack.nginx.url + REQUEST_PATH;
  const hupsBefore = await stack.nginx.reloads();
  const t0 = clockMs();
  const wrk = runWrk({ url, connections: CONNECTIONS, seconds });
  const probe = startProbe(url, { connections: 2, maxMs: seconds * 1000, keepAlive: true, t0 });
  const actionsAt: number[] = [];
  let failures = 0;
  // The first action 1 s in; none in the last second, so wrk sees every reload settle.
  for (let next = 1000; next < seconds * 1000 - 1000; next += EVERY_MS) {
    const wait = t0 + next - clockMs();
    if (wait > 0) await delay(wait);
    actionsAt.push(clockMs() - t0);
    if (!(await action())) failures++;
  }
  const [w, samples] = await Promise.all([wrk, probe.stop()]);
  const ok = samples.filter((s) => s.status !== 0);
  return {
    wrk: w,
    sighups: (await stack.nginx.reloads()) - hupsBefore,
    actions: actionsAt.length,
    actionFailures: failures,
    actionsAt,
    probe: {
      requests: samples.length,
      errors: samples.length - ok.length,
      non2xx: ok.filter((s) => s.status < 200 || s.status > 299).length,
      p50: percentile(ok.map((s) => s.ms), 50),
      p99: percentile(ok.map((s) => s.ms), 99),
    },
    samples,
  };
}

/** Runs figure 4 on `stack` (the daemon may run alongside, as deployed). */
export async function rotationUnderLoad(ctx: BenchContext, stack: BenchStack): Promise<RotationOutcome> {
  const seconds = ctx.quick ? 20 : 60;
  const ours = async () => (await stack.cli(['refresh-now', '--force'])).code === 0;
  const plain = async () => (await run([stack.nginx.binary, '-p', stack.nginx.prefix, '-c', stack.nginx.confPath, '-s', 'reload'])) === 0;
  const got = await alternate(ctx.runs, [
    { name: 'ours', run: () => loadWindow(stack, seconds, ours) },
    { name: 'nginx', run: () => loadWindow(stack, seconds, plain) },
  ], (name, round, w) =>
    ctx.say(`  fig 4 run ${round + 1} ${name}: ${int(w.wrk.rps)} req/s, ${w.actions} reloads (${w.actionFailures} failed, ${w.sighups} SIGHUPs seen), non-2xx ${w.wrk.non2xx}, socket errors ${w.wrk.socketErrors} ${JSON.stringify(w.wrk.errors)}, probe errors ${w.probe.errors}`));
  const o = got.ours!;
  const n = got.nginx!;
  const med = (ws: Window[], f: (w: Window) => number) => median(ws.map(f));
  const oursNon2xx = o.reduce((a, w) => a + w.wrk.non2xx + w.probe.non2xx, 0);
  // Socket errors come in bursts: one run in three can have several times the others' count
  // (a neighbour's load spike), so runs are compared by their medians, like every figure.
  const oursSock = med(o, (w) => w.wrk.socketErrors);
  const nginxSock = med(n, (w) => w.wrk.socketErrors);
  const total = (ws: Window[]) => ws.reduce((a, w) => a + w.wrk.socketErrors, 0);
  const reloads = (ws: Window[]) => ws.reduce((a, w) => a + w.actions, 0);
  const failedActions = [...o, ...n].reduce((a, w) => a + w.actionFailures, 0);
  const strip = (ws: Window[]) => ws.map(({ samples: _s, ...rest }) => rest);
  return {
    figure: {
      id: 4,
      title: `Rotation under load: a reload every ${EVERY_MS / 1000} s for ${seconds} s`,
      tools: `wrk (1 thread, ${CONNECTIONS} keep-alive connections) for counts; Node probe (2 keep-alive loops) for latency over time`,
      rows: [
        { figure: '4 rotation', measure: `non-2xx, refresh-now --force every ${EVERY_MS / 1000} s (all runs)`, value: String(oursNon2xx), goal: '0', met: oursNon2xx === 0 },
        { figure: '4 rotation', measure: 'socket errors per run (median): ours / nginx -s reload', value: `${oursSock} / ${nginxSock} (totals ${total(o)} / ${total(n)} in ${reloads(o)} / ${reloads(n)} reloads)`, goal: '<= nginx', met: oursSock <= nginxSock },
        { figure: '4 rotation', measure: 'req/s under rotation: ours / nginx -s reload', value: `${int(med(o, (w) => w.wrk.rps))} / ${int(med(n, (w) => w.wrk.rps))}` },
        { figure: '4 rotation', measure: 'probe p99: ours / nginx -s reload', value: `${ms(med(o, (w) => w.probe.p99))} / ${ms(med(n, (w) => w.probe.p99))}` },
      ],
      notes: [
        `${o.length} run(s) of ${seconds} s for each, alternating which goes first; socket errors are wrk's connect+read+write+timeout (per run: ours ${o.map((w) => w.wrk.socketErrors).join(', ')}; nginx ${n.map((w) => w.wrk.socketErrors).join(', ')}).`,
        `Reload commands that failed: ${failedActions}; SIGHUPs nginx logged per run: ours ${o.map((w) => w.sighups).join(', ')}, nginx -s reload ${n.map((w) => w.sighups).join(', ')}. The daemon runs alongside (as deployed); the old cookie stays valid, so no request needs the fallback.`,
      ],
      data: { seconds, everyMs: EVERY_MS, connections: CONNECTIONS, ours: strip(o), nginx: strip(n) },
    },
    chart: { ours: { samples: o[0]!.samples, actionsAt: o[0]!.actionsAt }, nginx: { samples: n[0]!.samples, actionsAt: n[0]!.actionsAt } },
  };
}
