/**
 * What each step of a refresh costs on its own, measured in the same run as the figure that
 * compares against it: the floor under recovery (figure 2) and under a forced refresh (figure 5).
 */
import { spawnSync } from 'node:child_process';
import { REQUEST_PATH } from '../figures/paths.js';
import { clockMs, timedGet } from './client.js';
import type { BenchStack } from './stack.js';
import { median } from './stats.js';

/** What the steps cost on their own, measured in the same run. */
export interface StepTimes {
  /** The backend's 401 for the request, direct (the first hop of a recovery). */
  unauthorizedMs: number;
  /** GET /_session with a dead cookie, direct (the probe). */
  probeMs: number;
  /** POST /_session, direct (the login). */
  loginMs: number;
  /** One `nginx -t` (behind the replay, not on its path). */
  nginxTestMs: number;
}

/** Each step alone, medians of `count`, on new connections like the daemon's. */
export async function stepTimes(stack: BenchStack, count: number): Promise<StepTimes> {
  const unauthorized: number[] = [];
  const probes: number[] = [];
  for (let i = 0; i < count; i++) {
    const u = await timedGet(stack.backend.url + REQUEST_PATH);
    if (u.status !== 401) throw new Error(`the backend answered ${u.status}, not 401, to ${REQUEST_PATH} without a cookie`);
    unauthorized.push(u.ms);
    const p = await timedGet(`${stack.backend.url}/_session`, { headers: { cookie: 'AuthSession=ZGVhZDo2NzAwMDAwMDpkZWFkZGVhZGRlYWQ' } });
    if (p.status !== 200) throw new Error(`GET /_session with a dead cookie answered ${p.status}`);
    probes.push(p.ms);
  }
  const logins: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = clockMs();
    const res = await fetch(`${stack.backend.url}/_session`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
      body: new URLSearchParams({ name: stack.backend.admin.name, password: stack.backend.admin.password }),
    });
    await res.arrayBuffer();
    logins.push(clockMs() - t);
  }
  const tests: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = clockMs();
    const r = spawnSync(stack.nginx.binary, ['-t', '-q', '-p', stack.nginx.prefix, '-c', stack.nginx.confPath], { stdio: 'ignore' });
    tests.push(clockMs() - t);
    if (r.status !== 0) throw new Error('nginx -t failed on the bench config');
  }
  return { unauthorizedMs: median(unauthorized), probeMs: median(probes), loginMs: median(logins), nginxTestMs: median(tests) };
}
