/**
 * What each step of a refresh costs on its own, measured in the same run as the figure that
 * compares against it: the floor under recovery (figure 2) and under a forced refresh (figure 5).
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
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

/** The backend's 401 for the request, direct, in ms. */
async function unauthorizedMs(stack: BenchStack): Promise<number> {
  const u = await timedGet(stack.backend.url + REQUEST_PATH);
  if (u.status !== 401) throw new Error(`the backend answered ${u.status}, not 401, to ${REQUEST_PATH} without a cookie`);
  return u.ms;
}

/** GET /_session with a dead cookie, direct, in ms. */
async function probeMs(stack: BenchStack): Promise<number> {
  const p = await timedGet(`${stack.backend.url}/_session`, { headers: { cookie: 'AuthSession=ZGVhZDo2NzAwMDAwMDpkZWFkZGVhZGRlYWQ' } });
  if (p.status !== 200) throw new Error(`GET /_session with a dead cookie answered ${p.status}`);
  return p.ms;
}

/** POST /_session, direct: how long it took, in ms, and the `AuthSession=…` cookie it gave. */
async function timedLogin(stack: BenchStack): Promise<{ ms: number; cookie: string }> {
  const t = clockMs();
  const res = await fetch(`${stack.backend.url}/_session`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
    body: new URLSearchParams({ name: stack.backend.admin.name, password: stack.backend.admin.password }),
  });
  await res.arrayBuffer();
  const ms = clockMs() - t;
  const cookie = /AuthSession=[^;]+/.exec(res.headers.get('set-cookie') ?? '')?.[0];
  if (!cookie) throw new Error(`the login answered ${res.status} without an AuthSession cookie`);
  return { ms, cookie };
}

/** Each step alone, medians of `count` back to back, on new connections like the daemon's. */
export async function stepTimes(stack: BenchStack, count: number): Promise<StepTimes> {
  const unauthorized: number[] = [];
  const probes: number[] = [];
  for (let i = 0; i < count; i++) {
    unauthorized.push(await unauthorizedMs(stack));
    probes.push(await probeMs(stack));
  }
  const logins: number[] = [];
  for (let i = 0; i < count; i++) logins.push((await timedLogin(stack)).ms);
  const tests: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = clockMs();
    const r = spawnSync(stack.nginx.binary, ['-t', '-q', '-p', stack.nginx.prefix, '-c', stack.nginx.confPath], { stdio: 'ignore' });
    tests.push(clockMs() - t);
    if (r.status !== 0) throw new Error('nginx -t failed on the bench config');
  }
  return { unauthorizedMs: median(unauthorized), probeMs: median(probes), loginMs: median(logins), nginxTestMs: median(tests) };
}

/** A recovery's four backend round trips done by a client that knows what to do, after quiet. */
export interface QuietChain {
  /** The four in a row, median ms: the backend's 401, the probe, the login, the request with the new cookie. */
  chainMs: number;
  /** Each step's median inside the chain, ms. */
  unauthorizedMs: number;
  probeMs: number;
  loginMs: number;
  replayMs: number;
  /** What nginx adds to one request: through nginx minus direct, back to back, ms. */
  nginxHopMs: number;
}

/**
 * A recovery's floor in a recovery's conditions: after `gapMs` of quiet (a rotation is rare, so
 * the daemon, nginx and the backend have been idle), the same four round trips in a row from this
 * process, medians of `count`. On a shared virtual machine the first request after quiet costs
 * several times what it costs in a tight loop, so a floor of steps timed back to back is lower
 * than any daemon could reach; steps each timed after quiet would pay that cost four times.
 */
export async function quietChain(stack: BenchStack, count: number, gapMs: number): Promise<QuietChain> {
  const t: Record<'chain' | 'unauthorized' | 'probe' | 'login' | 'replay', number[]> = { chain: [], unauthorized: [], probe: [], login: [], replay: [] };
  for (let i = 0; i < count; i++) {
    await delay(gapMs);
    const start = clockMs();
    t.unauthorized.push(await unauthorizedMs(stack));
    t.probe.push(await probeMs(stack));
    const { ms: loginMs, cookie } = await timedLogin(stack);
    t.login.push(loginMs);
    const r = await timedGet(stack.backend.url + REQUEST_PATH, { headers: { cookie } });
    if (r.status !== 200) throw new Error(`${REQUEST_PATH} with a new cookie answered ${r.status}`);
    t.replay.push(r.ms);
    t.chain.push(clockMs() - start);
  }
  const viaNginx: number[] = [];
  const direct: number[] = [];
  const cookie = await stack.cookie();
  for (let i = 0; i < count * 2; i++) {
    viaNginx.push((await timedGet(stack.nginx.url + REQUEST_PATH)).ms);
    direct.push((await timedGet(stack.backend.url + REQUEST_PATH, { headers: { cookie } })).ms);
  }
  return {
    chainMs: median(t.chain),
    unauthorizedMs: median(t.unauthorized),
    probeMs: median(t.probe),
    loginMs: median(t.login),
    replayMs: median(t.replay),
    nginxHopMs: Math.max(0, median(viaNginx) - median(direct)),
  };
}
