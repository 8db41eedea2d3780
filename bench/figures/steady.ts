/**
 * Figure 1, steady state: requests/s through nginx with the generated include
 * (`set $auth_cookie ...` + `proxy_set_header Cookie $auth_cookie`) vs the same cookie written
 * literally in `proxy_set_header Cookie "AuthSession=..."`. Both nginx run at once from the same
 * shipped snippet (only the auth lines differ) and are measured alternately with wrk.
 * Twice: behind pouchdb-server (the real case, backend-bound), and behind a minimal upstream
 * (an nginx answering 200), where nginx's own cost is most of the work.
 *
 * Throughput on a shared 2-core machine swings by +-20% from one second to the next, so each
 * comparison is many short alternating rounds (the median of per-round ratios is reported), and
 * the nginx worker's CPU time per request (from /proc) is reported beside it: CPU time is not
 * stolen by the neighbours the way wall time is. An A/A control (a second static nginx,
 * identical to the first) is measured in the same rounds: its ratio shows what "no difference"
 * looks like on this machine.
 */
import { alternate } from '../lib/alternate.js';
import type { BenchNginx } from '../lib/nginx.js';
import { childPids, cpuSeconds } from '../lib/proc.js';
import { fixed, int, type BenchContext, type FigureResult, type Row } from '../lib/report.js';
import type { BenchStack } from '../lib/stack.js';
import { median, medianCi } from '../lib/stats.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import { REQUEST_PATH } from './paths.js';

const GOAL = 0.99;

type Measured = WrkResult & { workerCpuUsPerRequest: number };

interface Pair {
  backend: string;
  include: Measured[];
  static: Measured[];
  /** Median of the per-round include/static throughput ratios. */
  ratio: number;
  pairRatios: number[];
  /** Median of the per-round include/static ratios of worker CPU per request. */
  cpuRatio: number;
  /** The A/A control: a second identical static nginx, per-round ratios to the static one. */
  control: Measured[];
  controlRatios: number[];
}

/** CPU seconds of an nginx's workers (the master does no request work). */
const workerCpu = (n: BenchNginx) => childPids(n.pid).reduce((t, pid) => t + cpuSeconds(pid), 0);

async function compare(ctx: BenchContext, backend: string, inc: BenchNginx, sta: BenchNginx, ctl: BenchNginx, seconds: number, rounds: number): Promise<Pair> {
  const wrk = async (n: BenchNginx, s = seconds): Promise<Measured> => {
    const c0 = workerCpu(n);
    const r = await runWrk({ url: n.url + REQUEST_PATH, connections: 16, seconds: s });
    return { ...r, workerCpuUsPerRequest: ((workerCpu(n) - c0) / r.requests) * 1e6 };
  };
  // Warm both (upstream keepalive pools, JIT in the backend) before anything counts.
  for (const n of [inc, sta, ctl]) await wrk(n, 1);
  const got = await alternate(rounds, [
    { name: 'include', run: () => wrk(inc) },
    { name: 'static', run: () => wrk(sta) },
    { name: 'control', run: () => wrk(ctl) },
  ]);
  const i = got.include!;
  const s = got.static!;
  const c = got.control!;
  const pairRatios = i.map((r, k) => r.rps / s[k]!.rps);
  const controlRatios = c.map((r, k) => r.rps / s[k]!.rps);
  const pair = { backend, include: i, static: s, ratio: median(pairRatios), pairRatios, cpuRatio: median(i.map((r, k) => r.workerCpuUsPerRequest / s[k]!.workerCpuUsPerRequest)), control: c, controlRatios };
  ctx.say(`  fig 1 ${backend}: ${rounds} rounds, include/static ${fixed(pair.ratio, 3)} (rounds ${fixed(Math.min(...pairRatios), 2)}-${fixed(Math.max(...pairRatios), 2)}), worker CPU/request ratio ${fixed(pair.cpuRatio, 3)}, A/A control ${fixed(median(controlRatios), 3)}`);
  return pair;
}

/** Runs figure 1 on `stack` (its nginx serves the generated include). */
export async function steadyState(ctx: BenchContext, stack: BenchStack): Promise<FigureResult> {
  const cookie = await stack.cookie();
  const rounds = ctx.quick ? 2 : 12;
  const seconds = ctx.quick ? 1 : 2;
  const staticCouch = await stack.variant('static-couch', { kind: 'static', cookie });
  const controlCouch = await stack.variant('control-couch', { kind: 'static', cookie });
  const couch = await compare(ctx, 'pouchdb-server', stack.nginx, staticCouch, controlCouch, seconds, rounds);
  const upstream = await stack.minimalUpstream();
  const includeMin = await stack.variant('include-minimal', { kind: 'include' }, upstream);
  const staticMin = await stack.variant('static-minimal', { kind: 'static', cookie }, upstream);
  const controlMin = await stack.variant('control-minimal', { kind: 'static', cookie }, upstream);
  const minimal = await compare(ctx, 'minimal upstream', includeMin, staticMin, controlMin, seconds, rounds);
  const failures = [couch, minimal].flatMap((p) => [...p.include, ...p.static, ...p.control]).reduce((n, r) => n + r.non2xx + r.socketErrors, 0);
  const controlRow = (p: Pair): Row => {
    const [lo, hi] = medianCi(p.controlRatios);
    return {
      figure: '1 steady state',
      measure: `A/A control: identical static / static, behind ${p.backend}`,
      value: `${fixed(median(p.controlRatios), 3)}, 95% CI ${fixed(lo, 2)}-${fixed(hi, 2)}`,
    };
  };
  const row = (p: Pair): Row => {
    const [lo, hi] = medianCi(p.pairRatios);
    return {
      figure: '1 steady state',
      measure: `req/s, include / static, behind ${p.backend}`,
      value: `${fixed(p.ratio, 3)}, 95% CI ${fixed(lo, 2)}-${fixed(hi, 2)} (${int(median(p.include.map((r) => r.rps)))} / ${int(median(p.static.map((r) => r.rps)))} req/s)`,
      goal: `>= ${GOAL}`,
      met: lo >= GOAL ? true : hi < GOAL ? false : p.ratio >= GOAL || 'noise',
    };
  };
  const cpuRow = (p: Pair): Row => {
    const [lo, hi] = medianCi(p.include.map((r, k) => r.workerCpuUsPerRequest / p.static[k]!.workerCpuUsPerRequest));
    return {
      figure: '1 steady state',
      measure: `nginx worker CPU per request, include / static, behind ${p.backend}`,
      value: `${fixed(p.cpuRatio, 3)}, 95% CI ${fixed(lo, 2)}-${fixed(hi, 2)} (${fixed(median(p.include.map((r) => r.workerCpuUsPerRequest)), 1)} / ${fixed(median(p.static.map((r) => r.workerCpuUsPerRequest)), 1)} µs)`,
    };
  };
  return {
    id: 1,
    title: 'Steady state: generated include vs static proxy_set_header',
    tools: 'wrk, 1 thread, 16 keep-alive connections, GET /_config/log/level',
    rows: [row(couch), cpuRow(couch), controlRow(couch), row(minimal), cpuRow(minimal), controlRow(minimal)],
    notes: [
      `${rounds} rounds of ${seconds} s per variant, alternating order; value = median of the per-round ratios with a bootstrap 95% interval; "within noise" when that interval spans the goal; ${failures} non-2xx or socket errors in all runs.`,
      'Both nginx are built from the same shipped snippet; the static one has the include line removed and the literal cookie in proxy_set_header.',
      'The minimal upstream is an nginx answering 200 at once, so the proxy itself is most of the work.',
    ],
    data: { path: REQUEST_PATH, rounds, seconds, couch, minimal, errors: failures },
  };
}
