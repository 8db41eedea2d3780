/** The machine a run was made on, for the README and results.json. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { nginxBinary } from '../../test/helpers/nginx.js';
import { wrkVersion } from './wrk.js';

/** The repository root, from dist-bench/bench/lib/. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Machine {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  nginx: string;
  wrk: string;
  /** 1-minute load average when the run started: other work on a shared machine. */
  loadAverageAtStart: number;
  /** The commit measured, "+dirty" when src/ had uncommitted changes. */
  commit: string;
}

export function describeMachine(): Machine {
  const cpuinfo = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const nginx = nginxBinary();
  const nginxV = nginx ? spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '') : 'missing';
  const nproc = Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()) || cpus().length;
  return {
    nproc,
    cpu: model.trim(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: spawnSync('uname', ['-sr'], { encoding: 'utf8' }).stdout.trim(),
    node: process.version,
    nginx: nginxV,
    wrk: wrkVersion() ?? 'missing',
    loadAverageAtStart: Math.round(loadavg()[0]! * 100) / 100,
    commit: `${spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: ROOT }).stdout.trim() || 'unknown'}${spawnSync('git', ['status', '--porcelain', 'src'], { encoding: 'utf8', cwd: ROOT }).stdout.trim() ? '+dirty' : ''}`,
  };
}
