/**
 * `npm run bench`: session-refresher's benchmark suite, on this machine, all on 127.0.0.1.
 * Starts pouchdb-server, real nginx built from the shipped snippets, the daemon, and (figure 7)
 * a PBKDF2 model backend, and (figure 8) a fleet of 10 nginx + 10 daemons on a real redis-server;
 * runs figures 1-9; prints a Markdown table; writes bench/results.json,
 * bench/results.md, bench/latency-rotation.svg and bench/latency-storm.svg (a run with a failed
 * figure writes to dist-bench/failed/ instead). Every process it
 * starts is stopped and every temp dir removed, also on failure or Ctrl-C.
 *
 *   npm run bench                # medians of 3 runs (figure 1: 12 short rounds); about 28 minutes on 2 cores, 5 more for figure 8
 *   npm run bench -- --quick     # 1 run each, shorter; writes to dist-bench/quick/
 *   npm run bench -- --only 2,3  # some figures; writes to dist-bench/partial/
 *
 * Needs nginx, wrk, curl and flock, and redis-server for figure 8; when one is missing it says
 * how to install it and exits 69.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCouch, type Couch } from '../test/helpers/couch.js';
import { startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { nginxBinary } from '../test/helpers/nginx.js';
import { rotationSvg, stormSvg } from './charts.js';
import { redisBinary, startRedis } from '../test/helpers/redis.js';
import { cliWallTime } from './figures/cli.js';
import { daemonResources, measureIdle, type Idle } from './figures/daemon-resources.js';
import { fleetFigure, NODES } from './figures/fleet.js';
import { oauth2Figure } from './figures/oauth2.js';
import { recoveryLatency } from './figures/recovery.js';
import { rotationUnderLoad } from './figures/rotation.js';
import { steadyState } from './figures/steady.js';
import { storm } from './figures/storm.js';
import { whySessions } from './figures/why-sessions.js';
import { startBenchFleet } from './lib/fleet.js';
import { describeMachine, type Machine } from './lib/machine.js';
import type { BenchContext, FigureResult } from './lib/report.js';
import { startBenchStack, type BenchStack } from './lib/stack.js';
import { unitNodeOptions } from './lib/unit.js';
import { wrkVersion } from './lib/wrk.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EX_UNAVAILABLE = 69;

interface Args {
  quick: boolean;
  only: Set<number> | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') args.quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const list = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i] ?? '';
      const ids = list.split(',').map(Number);
      if (ids.some((n) => !Number.isInteger(n) || n < 1 || n > 9)) throw new Error(`--only takes figure numbers 1-9 separated by commas; received "${list}"`);
      args.only = new Set(ids);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench [-- --quick] [-- --only 1,2,...]\n');
      process.exit(0);
    } else throw new Error(`unknown argument "${a}" (expected --quick or --only N,M)`);
  }
  return args;
}

/** Tools the bench runs; it installs none of them. */
function missingTools(want: (n: number) => boolean): string[] {
  const missing: string[] = [];
  if (want(8) && !redisBinary()) missing.push('redis-server');
  if (!nginxBinary()) missing.push('nginx');
  if (!wrkVersion()) missing.push('wrk');
  for (const tool of ['curl', 'flock']) if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(tool === 'flock' ? 'util-linux' : tool);
  return missing;
}

/** A Markdown table of every figure's rows. */
export function markdownTable(figures: FigureResult[]): string {
  const lines = ['| figure | measure | result | goal | met |', '|---|---|---|---|---|'];
  for (const f of figures) {
    for (const r of f.rows) lines.push(`| ${r.figure} | ${r.measure} | ${r.value} | ${r.goal ?? ''} | ${r.met === undefined ? '' : r.met === 'noise' ? 'within noise' : r.met ? 'yes' : '**no**'} |`);
  }
  return lines.join('\n');
}

function machineLine(m: Machine): string {
  return `${m.nproc} × ${m.cpu}, ${m.memoryGiB} GiB, ${m.kernel}; Node ${m.node}, nginx ${m.nginx}, ${m.wrk}; load average ${m.loadAverageAtStart} at start (shared machine); commit ${m.commit}`;
}

function markdownReport(machine: Machine, figures: FigureResult[], started: Date, seconds: number, mode: string): string {
  const notes = figures.flatMap((f) => [`- **${f.id}. ${f.title}** (${f.tools}). ${f.notes.join(' ')}`]);
  return `# session-refresher benchmark results

Run ${started.toISOString()} (${mode}, ${Math.round(seconds)} s) on ${machineLine(machine)}.

${markdownTable(figures)}

${notes.join('\n')}
`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const want = (n: number) => args.only === undefined || args.only.has(n);
  const missing = missingTools(want);
  if (missing.length > 0) {
    process.stderr.write(`bench: missing ${missing.join(', ')}. Install with:\n  sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}\n`);
    return EX_UNAVAILABLE;
  }
  const ctx: BenchContext = { quick: args.quick, runs: args.quick ? 1 : 3, say: (t) => process.stderr.write(`${t}\n`) };
  const mode = args.quick ? 'quick: 1 run per figure' : 'full: medians of 3+ runs';
  const machine = describeMachine();
  const started = new Date();
  const t0 = Date.now();
  ctx.say(`bench (${mode}) on ${machineLine(machine)}`);

  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    while (cleanups.length > 0) await cleanups.pop()!().catch((e: Error) => ctx.say(`cleanup: ${e.message}`));
  };
  const onSignal = (signal: NodeJS.Signals) => {
    ctx.say(`bench: ${signal}, stopping everything it started`);
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const figures: FigureResult[] = [];
  const failures: string[] = [];
  const charts: Record<string, string> = {};
  /** Runs one figure; a failure is recorded and the others still run. */
  const attempt = async <T>(id: number, work: () => Promise<T>): Promise<T | undefined> => {
    ctx.say(`figure ${id} ...`);
    try {
      return await work();
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      failures.push(`figure ${id}: ${message}`);
      ctx.say(`figure ${id} FAILED: ${message}`);
      return undefined;
    }
  };

  try {
    if ([1, 2, 3, 4, 6, 7].some(want)) {
      // Stack A: pouchdb-server + nginx (fallback to the daemon) + the daemon.
      const couch: Couch = await startCouch();
      cleanups.push(() => couch.stop());
      const stack: BenchStack = await startBenchStack(couch);
      cleanups.push(() => stack.stop());
      // The daemon runs with the V8 options of the shipped unit, as deployed.
      const daemon: Daemon = await startDaemon(stack.configPath, { NODE_OPTIONS: unitNodeOptions() });
      cleanups.push(() => daemon.stop());
      await stack.nginx.waitForGeneration(1);
      let idle: Idle | undefined;
      if (want(6)) idle = await attempt(6, () => measureIdle(ctx, daemon.child.pid!));
      if (want(1)) figures.push(...[await attempt(1, () => steadyState(ctx, stack))].filter((f): f is FigureResult => f !== undefined));
      if (want(2)) figures.push(...[await attempt(2, () => recoveryLatency(ctx, stack, couch, daemon))].filter((f): f is FigureResult => f !== undefined));
      if (want(3) || want(6)) {
        const s = await attempt(3, () => storm(ctx, stack, couch, daemon));
        if (s && want(3)) {
          figures.push(s.figure);
          charts['latency-storm.svg'] = stormSvg(s);
        }
        if (s && idle && want(6)) figures.push(daemonResources(idle, s.daemonPeakRssKiB));
      }
      if (want(4)) {
        const r = await attempt(4, () => rotationUnderLoad(ctx, stack));
        if (r) {
          figures.push(r.figure);
          charts['latency-rotation.svg'] = rotationSvg(r, (r.figure.data as { seconds: number }).seconds);
        }
      }
      if (want(7)) figures.push(...[await attempt(7, () => whySessions(ctx, stack))].filter((f): f is FigureResult => f !== undefined));
      await cleanup();
    }
    if (want(5)) {
      // Stack B: no daemon, so refresh-now is the only writer of its include.
      const couch = await startCouch();
      cleanups.push(() => couch.stop());
      const stack = await startBenchStack(couch, { fallback: false });
      cleanups.push(() => stack.stop());
      figures.push(...[await attempt(5, () => cliWallTime(ctx, stack))].filter((f): f is FigureResult => f !== undefined));
      await cleanup();
    }
    if (want(8)) {
      // Stack C: a fleet (10 nginx + 10 daemons) on one backend and one redis-server.
      const couch = await startCouch();
      cleanups.push(() => couch.stop());
      const redis = await startRedis();
      cleanups.push(() => redis.remove());
      const fleet = await attempt(8, async () => {
        const started = await startBenchFleet(couch, redis, NODES, ctx.say);
        cleanups.push(() => started.stop());
        return fleetFigure(ctx, couch, redis, started);
      });
      if (fleet) figures.push(fleet);
      await cleanup();
    }
    if (want(9)) {
      // Stack D: an oauth2-client-credentials session on oidc-provider and a jose resource server.
      figures.push(...[await attempt(9, () => oauth2Figure(ctx))].filter((f): f is FigureResult => f !== undefined));
    }
  } finally {
    await cleanup();
  }

  figures.sort((a, b) => a.id - b.id);
  // Only a complete, successful full run replaces the committed results.
  const outDir = failures.length > 0 ? join(ROOT, 'dist-bench', 'failed') : args.only ? join(ROOT, 'dist-bench', 'partial') : args.quick ? join(ROOT, 'dist-bench', 'quick') : join(ROOT, 'bench');
  const seconds = (Date.now() - t0) / 1000;
  const report = markdownReport(machine, figures, started, seconds, mode);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'results.json'), `${JSON.stringify({ started: started.toISOString(), seconds: Math.round(seconds), mode, machine, figures, failures }, null, 1)}\n`);
  await writeFile(join(outDir, 'results.md'), report);
  for (const [name, svg] of Object.entries(charts)) await writeFile(join(outDir, name), svg);
  process.stdout.write(`\n${report}\n`);
  process.stdout.write(`Written to ${outDir}: results.json, results.md${Object.keys(charts).map((c) => `, ${c}`).join('')} (${Math.round(seconds)} s)\n`);
  if (failures.length > 0) {
    process.stderr.write(`\n${failures.length} figure(s) failed:\n${failures.join('\n')}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
