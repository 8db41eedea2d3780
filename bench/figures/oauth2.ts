/**
 * Figure 9, an oauth2-client-credentials session: steady state and recovery against a real
 * authorization server (oidc-provider) and the test resource server that verifies every token
 * with jose against the provider's JWKS (test/helpers/oidc.ts, resource-server.ts), behind a
 * real nginx built from the shipped snippet for the kind, with the daemon.
 *
 * Steady state: requests/s through nginx (the Bearer token from the include) against requests/s
 * straight to the resource server with the same token, alternating short wrk rounds: what the
 * proxy hop with the generated include costs in front of a token-verifying API.
 * Recovery: the provider rotates its signing key, so every token issued is refused with RFC 6750
 * `invalid_token`; the first request after it (401 -> the fallback -> the challenge says dead ->
 * one token request -> replay) against a normal request, p50 and p99 over N rotations; token
 * requests per rotation (goal 1) and requests not answered 200 (goal 0).
 */
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Daemon } from '../../test/helpers/daemon.js';
import { BASIC_CLIENT, CLIENT_SECRET, startAuthorizationServer, type AuthorizationServer } from '../../test/helpers/oidc.js';
import { startResourceServer, type ResourceServer } from '../../test/helpers/resource-server.js';
import { startTokenStack, type TokenStack } from '../../test/helpers/token-stack.js';
import { alternate } from '../lib/alternate.js';
import { timedGet } from '../lib/client.js';
import { fixed, int, ms, type BenchContext, type FigureResult } from '../lib/report.js';
import { median, medianCi, percentile } from '../lib/stats.js';
import { runWrk } from '../lib/wrk.js';

const SECRET_FILE = 'client.secret';
/** Recovery goal, as figure 2's: the first request after an invalidation within this many normal requests. */
const GOAL = 3;
const NORMAL_PER_ROUND = 5;
const PATH = '/api/bench';

interface Parts {
  as: AuthorizationServer;
  rs: ResourceServer;
  stack: TokenStack;
  daemon: Daemon;
}

async function start(): Promise<Parts> {
  const as = await startAuthorizationServer({ accessTokenTtl: 3600 });
  const rs = await startResourceServer({ mode: 'oauth2', issuer: as.issuer, jwksUri: as.jwksUri, audience: as.resource, cacheMaxAgeMs: 200 });
  const stack = await startTokenStack({
    backend: rs.url,
    secrets: { [SECRET_FILE]: `${CLIENT_SECRET}\n` },
    session: (dir) => ({ kind: 'oauth2-client-credentials', token_url: as.tokenUrl, client_id: BASIC_CLIENT, client_secret_file: join(dir, SECRET_FILE) }),
    daemon: { min_refresh_interval: 0.05, max_reloads_per_minute: 10000 },
  });
  const daemon = await stack.startDaemon();
  await stack.nginx.waitForGeneration(1);
  return { as, rs, stack, daemon };
}

/** Waits until the resource server refuses `token` (it refetches the JWKS once its cache ages out). */
async function refused(rs: ResourceServer, token: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await timedGet(`${rs.url}/api/witness`, { headers: { authorization: `Bearer ${token}` }, agent: false })).status !== 401) {
    if (Date.now() > deadline) throw new Error('the resource server still accepts the old token');
    await delay(20);
  }
}

/** Runs figure 9. */
export async function oauth2Figure(ctx: BenchContext): Promise<FigureResult> {
  const parts = await start();
  const { as, rs, stack } = parts;
  try {
    const seconds = ctx.quick ? 1 : 2;
    const rounds = ctx.quick ? 3 : 9;
    const token = (await stack.token())!;
    const viaNginx = () => runWrk({ url: stack.nginx.url + PATH, connections: 16, seconds });
    const direct = () => runWrk({ url: rs.url + PATH, connections: 16, seconds, headers: { authorization: `Bearer ${token}` } });
    await viaNginx();
    await direct();
    const got = await alternate(rounds, [
      { name: 'nginx', run: viaNginx },
      { name: 'direct', run: direct },
    ]);
    const ratios = got.nginx!.map((r, k) => r.rps / got.direct![k]!.rps);
    const [lo, hi] = medianCi(ratios);
    const wrkErrors = [...got.nginx!, ...got.direct!].reduce((n, r) => n + r.non2xx + r.socketErrors, 0);
    ctx.say(`  fig 9 steady: nginx/direct ${fixed(median(ratios), 3)} (${int(median(got.nginx!.map((r) => r.rps)))} / ${int(median(got.direct!.map((r) => r.rps)))} req/s)`);

    const invalidations = ctx.quick ? 10 : 30;
    const normal: number[] = [];
    const recovery: number[] = [];
    const perRotation: number[] = [];
    let failures = 0;
    let generation = Number(await stack.nginx.generation());
    for (let i = 0; i < invalidations; i++) {
      await timedGet(stack.nginx.url + PATH, { agent: false });
      for (let k = 0; k < NORMAL_PER_ROUND; k++) normal.push((await timedGet(stack.nginx.url + PATH, { agent: false })).ms);
      const current = (await stack.token())!;
      await as.rotateKeys();
      await refused(rs, current);
      const before = as.tokenRequests().length;
      const sample = await timedGet(stack.nginx.url + PATH, { agent: false });
      if (sample.status !== 200) failures++;
      recovery.push(sample.ms);
      generation++;
      await stack.nginx.waitForGeneration(generation, 10_000);
      perRotation.push(as.tokenRequests().length - before);
    }
    // The floor, in the recovery's own conditions: after a rotation, one token request (the
    // provider's first with its new key) and one request with the new token straight to the
    // resource server (its first use of the new key), on new connections, as the daemon does.
    const form = (v: string) => new URLSearchParams({ v }).toString().slice(2);
    const tokenAlone: number[] = [];
    const firstUse: number[] = [];
    for (let i = 0; i < invalidations; i++) {
      const witness = (await stack.token())!;
      await as.rotateKeys();
      await refused(rs, witness);
      const t0 = performance.now();
      const res = await fetch(as.tokenUrl, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${form(BASIC_CLIENT)}:${form(CLIENT_SECRET)}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
        body: 'grant_type=client_credentials',
      });
      const fresh = ((await res.json()) as { access_token: string }).access_token;
      tokenAlone.push(performance.now() - t0);
      firstUse.push((await timedGet(rs.url + PATH, { headers: { authorization: `Bearer ${fresh}` }, agent: false })).ms);
      // Let the daemon catch up with the rotation before the next one, as in the recovery loop.
      await timedGet(stack.nginx.url + PATH, { agent: false });
      generation++;
      await stack.nginx.waitForGeneration(generation, 10_000);
    }
    // Normal request (the 401 costs about one), cold token request, first use of the new key.
    const floorP50 = percentile(normal, 50) + percentile(tokenAlone, 50) + percentile(firstUse, 50);
    const ratioP50 = percentile(recovery, 50) / percentile(normal, 50);
    const ratioP99 = percentile(recovery, 99) / percentile(normal, 99);
    ctx.say(`  fig 9 recovery: p50 ${ms(percentile(recovery, 50))} vs ${ms(percentile(normal, 50))}, token requests per rotation max ${Math.max(...perRotation)}, ${failures} not 200`);
    return {
      id: 9,
      title: 'An oauth2-client-credentials session: steady state and recovery',
      tools: 'oidc-provider, a jose resource server, wrk (16 connections), Node probes (a new connection each)',
      rows: [
        {
          figure: '9 oauth2',
          measure: 'req/s through nginx with the generated Bearer include / straight to the resource server with the same token',
          value: `${fixed(median(ratios), 3)}, 95% CI ${fixed(lo, 2)}-${fixed(hi, 2)} (${int(median(got.nginx!.map((r) => r.rps)))} / ${int(median(got.direct!.map((r) => r.rps)))} req/s)`,
        },
        { figure: '9 oauth2', measure: `recovery after a signing-key rotation, p50 (${invalidations} rotations): first request / normal request`, value: `${fixed(ratioP50, 1)}x (${ms(percentile(recovery, 50))} / ${ms(percentile(normal, 50))})`, goal: `<= ${GOAL}x`, met: ratioP50 <= GOAL },
        { figure: '9 oauth2', measure: 'recovery, p99: first request / normal request', value: `${fixed(ratioP99, 1)}x (${ms(percentile(recovery, 99))} / ${ms(percentile(normal, 99))})` },
        { figure: '9 oauth2', measure: 'floor, p50: the 401 (one normal request) + one token request after a rotation + the new token\'s first use at the resource server, each alone', value: `${ms(floorP50)} (${ms(percentile(normal, 50))} + ${ms(percentile(tokenAlone, 50))} + ${ms(percentile(firstUse, 50))})` },
        { figure: '9 oauth2', measure: 'recovery over its floor, p50: the daemon\'s own share', value: ms(percentile(recovery, 50) - floorP50) },
        { figure: '9 oauth2', measure: 'token requests per rotation, max / median', value: `${Math.max(...perRotation)} / ${median(perRotation)}`, goal: '1', met: Math.max(...perRotation) === 1 },
        { figure: '9 oauth2', measure: 'requests not 200 (recovery requests, and wrk non-2xx or socket errors)', value: `${failures}, ${wrkErrors}`, goal: '0', met: failures === 0 && wrkErrors === 0 },
      ],
      notes: [
        `Steady state: ${rounds} alternating rounds of ${seconds} s; value = median of the per-round ratios with a bootstrap 95% interval. The resource server verifies every token (ES256, jose) in one Node process, so it is the bottleneck either way; the ratio is what the nginx hop adds in front of it.`,
        `Recovery: the provider rotates its signing key; the resource server's JWKS cache (200 ms) is waited out with a token of the old key, then one request is timed through nginx: 401 invalid_token, the fallback, one token request, the replay. Include, nginx -t and the reload follow behind; the next rotation waits for them. Normal requests: ${NORMAL_PER_ROUND} between rotations.`,
      ],
      data: { steady: { ratios, nginx: got.nginx, direct: got.direct }, recovery, normal, tokenAlone, firstUse, floorP50, perRotation, failures },
    };
  } finally {
    await parts.daemon.stop();
    await Promise.allSettled([stack.stop(), rs.stop(), as.stop()]);
  }
}
