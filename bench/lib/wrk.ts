/**
 * wrk (Debian's `wrk` package) as the load generator for throughput figures. Its totals come
 * from bench/wrk-report.lua's `done` hook as one JSON line. Missing wrk is reported with the
 * command that installs it; the benchmark installs nothing itself.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPORT = fileURLToPath(new URL('../../../bench/wrk-report.lua', import.meta.url));

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  /** wrk's "status" errors: responses with a status >= 400 (wrk's "Non-2xx or 3xx"). */
  non2xx: number;
  /** connect + read + write + timeout errors. */
  socketErrors: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
}

export interface WrkOptions {
  url: string;
  connections: number;
  seconds: number;
  threads?: number;
  /** wrk's per-request timeout in seconds (default 10). */
  timeout?: number;
  headers?: Record<string, string>;
}

/** The wrk binary's version line, or undefined when wrk is not installed. */
export function wrkVersion(): string | undefined {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (r.error) return undefined;
  return `${r.stdout}${r.stderr}`.split('\n')[0]?.replace(/\s*Copyright.*$/, '').trim();
}

/** Runs wrk once; rejects when wrk fails or prints no report. */
export function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(options.threads ?? 1), '-c', String(options.connections), '-d', `${options.seconds}s`, '--timeout', `${options.timeout ?? 10}s`, '-s', REPORT];
  for (const [k, v] of Object.entries(options.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(options.url);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // wrk stops by itself after -d; this guards against a hung run.
    const guard = setTimeout(() => child.kill('SIGKILL'), (options.seconds + 30) * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
      if (code !== 0 || !line) return reject(new Error(`wrk exited ${code}: ${out.trim()}`));
      const j = JSON.parse(line.slice('WRK_JSON '.length)) as {
        requests: number; duration_us: number; errors: WrkResult['errors'];
        latency_us: { mean: number; p50: number; p90: number; p99: number; max: number };
      };
      const seconds = j.duration_us / 1e6;
      const ms = (us: number) => us / 1000;
      resolve({
        requests: j.requests,
        seconds,
        rps: j.requests / seconds,
        non2xx: j.errors.status,
        socketErrors: j.errors.connect + j.errors.read + j.errors.write + j.errors.timeout,
        errors: j.errors,
        latencyMs: { mean: ms(j.latency_us.mean), p50: ms(j.latency_us.p50), p90: ms(j.latency_us.p90), p99: ms(j.latency_us.p99), max: ms(j.latency_us.max) },
      });
    });
  });
}
