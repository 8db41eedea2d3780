/**
 * Figure 5, the CLI: wall time of `session-refresher refresh-now` (spawned as cron would), with
 * nothing to do (no-op) and forced (login, write, nginx -t, SIGHUP), vs bench/refresh-with-curl.sh
 * doing the same steps with curl against its own nginx and include, interleaved in the same run.
 * Also where the no-op time goes: a bare `node -e 0`, and `session-refresher --version` (the
 * program without a command).
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYamlConfig } from '../../src/config/yaml-file.js';
import { CLI } from '../../test/helpers/paths.js';
import { placeholderInclude } from '../../test/helpers/nginx.js';
import { clockMs } from '../lib/client.js';
import { startBenchNginx } from '../lib/nginx.js';
import { fixed, ms, type BenchContext, type FigureResult } from '../lib/report.js';
import type { BenchStack } from '../lib/stack.js';
import { median } from '../lib/stats.js';
import { stepTimes } from '../lib/steps.js';

/** Issue goals: a no-op costs at most this many times `node -e 0`; a forced refresh at most its floor plus this. */
const NOOP_GOAL = 1.3;
const FORCED_GOAL_MS = 40;
/**
 * Parsing a configuration with sixteen times the keys may take at most this many times as long:
 * linear parsing gives about 16, yaml's own repeated-key check (each key against every earlier
 * one) gave 48-59, and a config file may hold thousands of keys before its size bound.
 */
const YAML_SCALING_GOAL = 32;

/** Median ms of parsing `n` distinct top-level keys, over `rounds` parses. */
function yamlParseMs(n: number, rounds: number): number {
  const text = Array.from({ length: n }, (_, i) => `k${i}: 1`).join('\n');
  const times = Array.from({ length: rounds }, () => {
    const started = clockMs();
    const problems: string[] = [];
    parseYamlConfig(text, problems);
    if (problems.length > 0) throw new Error(`the generated config did not parse: ${problems[0]}`);
    return clockMs() - started;
  });
  return median(times);
}

const SCRIPT = fileURLToPath(new URL('../../../bench/refresh-with-curl.sh', import.meta.url));

/** Spawns argv, waits for it, returns wall ms; rejects on a non-zero exit. */
function timed(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = clockMs();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      const wall = clockMs() - t;
      if (code === 0) resolve(wall);
      else reject(new Error(`${argv.join(' ')} exited ${code}: ${err.trim()}`));
    });
  });
}

interface RunResult {
  cliNoop: number;
  shellNoop: number;
  cliFull: number;
  shellFull: number;
  nodeBare: number;
  cliVersion: number;
}

/** Runs figure 5 on a stack with no daemon (refresh-now is the only writer of its include). */
export async function cliWallTime(ctx: BenchContext, stack: BenchStack): Promise<FigureResult> {
  const shellInclude = join(stack.dir, 'include', 'shell.conf');
  await writeFile(shellInclude, placeholderInclude(), { mode: 0o640 });
  const shellNginx = await startBenchNginx({ prefix: join(stack.dir, 'nginx-shell'), include: shellInclude, backend: stack.backend.url, auth: { kind: 'include' } });
  try {
    const passwordFile = (stack.config.sessions as { password_file: string }[])[0]!.password_file;
    const shell = (force: boolean) => [
      SCRIPT, ...(force ? ['--force'] : []), stack.backend.url, stack.backend.admin.name, passwordFile, shellInclude,
      join(stack.dir, 'shell.state'), shellNginx.binary, shellNginx.prefix, shellNginx.confPath, shellNginx.pidFile,
    ];
    const cli = (force: boolean) => [process.execPath, CLI, 'refresh-now', ...(force ? ['--force'] : []), '--config', stack.configPath];
    // First logins, so the no-op runs find fresh cookies.
    await timed(cli(true));
    await timed(shell(true));
    const noops = ctx.quick ? 5 : 10;
    const fulls = ctx.quick ? 3 : 6;
    const runs: RunResult[] = [];
    for (let r = 0; r < ctx.runs; r++) {
      const s: Record<keyof RunResult, number[]> = { cliNoop: [], shellNoop: [], cliFull: [], shellFull: [], nodeBare: [], cliVersion: [] };
      for (let i = 0; i < noops; i++) {
        // Alternate which goes first, so neither always follows the other's page-cache warm-up.
        const pair: [keyof RunResult, string[]][] = [['cliNoop', cli(false)], ['shellNoop', shell(false)]];
        for (const [k, argv] of i % 2 ? pair.reverse() : pair) s[k].push(await timed(argv));
        s.nodeBare.push(await timed([process.execPath, '-e', '0']));
        s.cliVersion.push(await timed([process.execPath, CLI, '--version']));
      }
      for (let i = 0; i < fulls; i++) {
        const pair: [keyof RunResult, string[]][] = [['cliFull', cli(true)], ['shellFull', shell(true)]];
        for (const [k, argv] of i % 2 ? pair.reverse() : pair) s[k].push(await timed(argv));
      }
      const run = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)])) as unknown as RunResult;
      runs.push(run);
      ctx.say(`  fig 5 run ${r + 1}: no-op ${ms(run.cliNoop)} vs shell ${ms(run.shellNoop)}; full ${ms(run.cliFull)} vs shell ${ms(run.shellFull)}; node -e 0 ${ms(run.nodeBare)}, --version ${ms(run.cliVersion)}`);
    }
    const med = (k: keyof RunResult) => median(runs.map((r) => r[k]));
    const ratio = (a: keyof RunResult, b: keyof RunResult) => median(runs.map((r) => r[a] / r[b]));
    const steps = await stepTimes(stack, 10);
    // What a forced refresh cannot avoid: starting Node, one login, one nginx -t.
    const floor = med('nodeBare') + steps.loginMs + steps.nginxTestMs;
    const noopRatio = ratio('cliNoop', 'nodeBare');
    yamlParseMs(16_000, 2);
    const yamlSmall = yamlParseMs(1_000, 9);
    const yamlLarge = yamlParseMs(16_000, 9);
    const yamlRatio = yamlLarge / yamlSmall;
    return {
      id: 5,
      title: 'CLI: refresh-now wall time vs the same steps in a shell script with curl',
      tools: 'spawned from Node, wall time from spawn to exit; bench/refresh-with-curl.sh is the shell baseline',
      rows: [
        { figure: '5 CLI', measure: 'refresh-now no-op: ours / shell (ratio)', value: `${ms(med('cliNoop'))} / ${ms(med('shellNoop'))} (${fixed(ratio('cliNoop', 'shellNoop'), 1)}x)` },
        { figure: '5 CLI', measure: 'refresh-now --force: ours / shell (ratio)', value: `${ms(med('cliFull'))} / ${ms(med('shellFull'))} (${fixed(ratio('cliFull', 'shellFull'), 1)}x)` },
        { figure: '5 CLI', measure: 'no-op, where it goes: node -e 0 / --version / refresh-now', value: `${ms(med('nodeBare'))} / ${ms(med('cliVersion'))} / ${ms(med('cliNoop'))}` },
        { figure: '5 CLI', measure: `refresh-now no-op / node -e 0, Node ${process.version}`, value: `${fixed(noopRatio, 2)}x`, goal: `<= ${NOOP_GOAL}x`, met: noopRatio <= NOOP_GOAL },
        {
          figure: '5 CLI',
          measure: `refresh-now --force over its floor (node -e 0 + one login + one nginx -t, each alone), Node ${process.version}`,
          value: `+${ms(med('cliFull') - floor)} (${ms(med('cliFull'))} - ${ms(med('nodeBare'))} - ${ms(steps.loginMs)} - ${ms(steps.nginxTestMs)})`,
          goal: `<= +${FORCED_GOAL_MS} ms`,
          met: med('cliFull') - floor <= FORCED_GOAL_MS,
        },
        {
          figure: '5 CLI',
          measure: 'config parse, 16,000 keys / 1,000 keys (linear is about 16x)',
          value: `${fixed(yamlRatio, 1)}x (${ms(yamlLarge)} / ${ms(yamlSmall)})`,
          goal: `< ${YAML_SCALING_GOAL}x`,
          met: yamlRatio < YAML_SCALING_GOAL,
        },
      ],
      notes: [
        `${runs.length} run(s) of ${noops} no-op and ${fulls} forced runs each, interleaved; medians of per-run medians.`,
        'The shell script has its own nginx and include (same config), so neither side sees the other\'s include as edited by hand.',
      ],
      data: { runs, steps, node: process.version, yamlParseMs: { keys1000: yamlSmall, keys16000: yamlLarge } },
    };
  } finally {
    await shellNginx.stop();
  }
}
