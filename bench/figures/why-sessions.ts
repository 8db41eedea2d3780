/**
 * Figure 7, why sessions: what nginx sending per-request Basic credentials costs the backend,
 * against the session cookie from the generated include, measured alternately with wrk.
 *
 * Against pouchdb-server (which checks its admin password at 10 iterations), and against the
 * MODEL of CouchDB 3.4's password check (bench/pbkdf2-model-server.ts): PBKDF2-SHA256 at
 * 600,000 iterations, with `couch_passwords_cache` answering a user's later checks at 5
 * iterations. On the model, side by side:
 *  - the first Basic request of a user (cache cold), and the next one (cached);
 *  - steady Basic for one proxy account with the cache, vs the cookie;
 *  - what the cache does not cover: the cache disabled, and more users than `max_objects`
 *    (16 users over max_objects 8, picked at random per request: the 1:2 ratio of 20,000 users
 *    over CouchDB's default 10,000, scaled down so a run takes seconds).
 * The model's own counts (slow and cached checks) are checked after each part, so a model that
 * stopped behaving like the cache fails the figure instead of printing numbers.
 */
import { alternate } from '../lib/alternate.js';
import { timedGet } from '../lib/client.js';
import { startModelBackend, type ModelBackend, type ModelCounts } from '../lib/model.js';
import type { BenchNginx } from '../lib/nginx.js';
import { fixed, int, ms, type BenchContext, type FigureResult, type Row } from '../lib/report.js';
import { startBenchStack, type BenchStack } from '../lib/stack.js';
import { median } from '../lib/stats.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import { REQUEST_PATH } from './paths.js';

export const MODEL_NAME = "model of CouchDB 3.4's password check (PBKDF2-SHA256 at 600,000 iterations; couch_passwords_cache: 5 iterations after a user's first successful check, max_objects 10,000, max_idle 10 min)";

/** Users and cache size of the many-users case (scaled from 20,000 over 10,000). */
const MANY = { users: 16, maxObjects: 8 } as const;

const basicHeader = (name: string, password: string) => `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;
const rpsOf = (rs: WrkResult[]) => median(rs.map((r) => r.rps));
const p50Of = (rs: WrkResult[]) => median(rs.map((r) => r.latencyMs.p50));
const num = (v: number) => (v < 100 ? fixed(v, 1) : int(v));
const errorsIn = (rs: WrkResult[]) => rs.reduce((n, r) => n + r.non2xx + r.socketErrors, 0);

/** Runs wrk on each named nginx alternately, `ctx.runs` times, after a 1 s warm-up each. */
async function measure(ctx: BenchContext, label: string, targets: Record<string, string>, seconds: number, connections: number): Promise<Record<string, WrkResult[]>> {
  const wrk = (url: string, s = seconds) => runWrk({ url: url + REQUEST_PATH, connections, seconds: s, timeout: 30 });
  for (const url of Object.values(targets)) await wrk(url, 1);
  return alternate(
    ctx.runs,
    Object.entries(targets).map(([name, url]) => ({ name, run: () => wrk(url) })),
    (v, round, r) => ctx.say(`  fig 7 ${label} run ${round + 1} ${v}: ${fixed(r.rps, 1)} req/s, p50 ${ms(r.latencyMs.p50)}, errors ${r.non2xx + r.socketErrors}`),
  );
}

/** The cookie and the one-user Basic variant against pouchdb-server. */
async function onPouchdb(ctx: BenchContext, stack: BenchStack): Promise<Record<string, WrkResult[]>> {
  const { name, password } = stack.backend.admin;
  const basic = await stack.variant('basic-pouchdb', { kind: 'basic', authorization: basicHeader(name, password) });
  return measure(ctx, 'pouchdb-server', { cookie: stack.nginx.url, basic: basic.url }, ctx.quick ? 2 : 4, 16);
}

interface FirstRequests {
  coldMs: number[];
  warmMs: number[];
}

/**
 * The first Basic request of a user and the one after it: the cache is emptied (as a node
 * restart, 10 idle minutes or a password change would), then two requests through nginx.
 */
async function firstRequests(ctx: BenchContext, basic: BenchNginx, model: ModelBackend): Promise<FirstRequests> {
  const out: FirstRequests = { coldMs: [], warmMs: [] };
  for (let i = 0; i < (ctx.quick ? 3 : 7); i++) {
    await model.reset();
    const cold = await timedGet(basic.url + REQUEST_PATH);
    const warm = await timedGet(basic.url + REQUEST_PATH);
    if (cold.status !== 200 || warm.status !== 200) throw new Error(`first requests answered ${cold.status} / ${warm.status}`);
    const counts = await model.counts();
    if (counts.slowChecks !== 1 || counts.fastChecks !== 1) throw new Error(`the model should have made one slow then one cached check, counted ${JSON.stringify(counts)}`);
    out.coldMs.push(cold.ms);
    out.warmMs.push(warm.ms);
  }
  ctx.say(`  fig 7 first request per user: cold ${ms(median(out.coldMs))}, next ${ms(median(out.warmMs))}`);
  return out;
}

/** Checks made between two readings of the model's counts. */
function checksBetween(before: ModelCounts, after: ModelCounts): { slow: number; fast: number } {
  return { slow: after.slowChecks - before.slowChecks, fast: after.fastChecks - before.fastChecks };
}

interface ModelResult {
  first: FirstRequests;
  runs: Record<string, WrkResult[]>;
  checks: Record<'cached' | 'uncached' | 'many', { slow: number; fast: number }>;
}

/** The model part: three model backends (cache on, cache off, many users) behind one stack. */
async function onModel(ctx: BenchContext): Promise<ModelResult> {
  const started: { stop(): Promise<void> }[] = [];
  try {
    const cached = await startModelBackend();
    started.push(cached);
    const uncached = await startModelBackend({ cache: false });
    started.push(uncached);
    const many = await startModelBackend(MANY);
    started.push(many);
    const stack = await startBenchStack(cached, { fallback: false });
    started.push(stack);
    const login = await stack.cli(['refresh-now']);
    if (login.code !== 0) throw new Error(`refresh-now against the PBKDF2 model failed (${login.code}): ${login.stderr}`);
    const { name, password } = cached.admin;
    const basicCached = await stack.variant('basic-cached', { kind: 'basic', authorization: basicHeader(name, password) });
    const basicUncached = await stack.variant('basic-uncached', { kind: 'basic', authorization: basicHeader(name, password) }, uncached.url);
    const basicMany = await stack.variant('basic-many', { kind: 'basic', authorization: many.users.map((u) => basicHeader(u, password)) }, many.url);

    const first = await firstRequests(ctx, basicCached, cached);
    const models = { cached, uncached, many };
    const before = Object.fromEntries(await Promise.all(Object.entries(models).map(async ([k, m]) => [k, await m.counts()] as const))) as Record<keyof typeof models, ModelCounts>;
    const runs = await measure(ctx, 'model', { cookie: stack.nginx.url, basicCached: basicCached.url, basicUncached: basicUncached.url, basicMany: basicMany.url }, ctx.quick ? 5 : 10, 8);
    const checks = Object.fromEntries(await Promise.all(Object.entries(models).map(async ([k, m]) => [k, checksBetween(before[k as keyof typeof models], await m.counts())] as const))) as ModelResult['checks'];
    // The measured runs include their 1 s warm-ups; the cached model's one user was cached before them.
    if (checks.cached.slow !== 0) throw new Error(`one cached user should cost no slow check, counted ${checks.cached.slow}`);
    if (checks.uncached.fast !== 0) throw new Error(`with the cache off no check may be cached, counted ${checks.uncached.fast}`);
    return { first, runs, checks };
  } finally {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
  }
}

/**
 * An estimate of what a cached Basic request costs the model beyond a cookie request: under wrk
 * the model's one thread is the bottleneck, so per-request cost is about 1/throughput.
 */
function extraMicros(cookie: WrkResult[], basic: WrkResult[]): string {
  return `~${int(1e6 / rpsOf(basic) - 1e6 / rpsOf(cookie))} µs more per request`;
}

function rows(pouch: Record<string, WrkResult[]>, model: ModelResult): Row[] {
  const f = '7 why sessions';
  const cookie = model.runs.cookie!;
  const versus = (basic: WrkResult[]) => `${fixed(rpsOf(cookie) / rpsOf(basic), rpsOf(cookie) / rpsOf(basic) < 10 ? 2 : 0)}x (${num(rpsOf(cookie))} / ${num(rpsOf(basic))} req/s); p50 ${ms(p50Of(cookie))} / ${ms(p50Of(basic))}`;
  const many = model.checks.many;
  const slowShare = many.slow / Math.max(1, many.slow + many.fast);
  return [
    { figure: f, measure: 'req/s, cookie / Basic, pouchdb-server', value: `${fixed(rpsOf(pouch.cookie!) / rpsOf(pouch.basic!), 2)}x (${num(rpsOf(pouch.cookie!))} / ${num(rpsOf(pouch.basic!))}); p50 ${ms(p50Of(pouch.cookie!))} / ${ms(p50Of(pouch.basic!))}` },
    { figure: f, measure: 'model of CouchDB 3.4: first Basic request of a user (cache cold) / the next one (cached), latency p50', value: `${ms(median(model.first.coldMs))} / ${ms(median(model.first.warmMs))}` },
    { figure: f, measure: 'model of CouchDB 3.4: cookie / steady Basic with couch_passwords_cache (one proxy account)', value: `${versus(model.runs.basicCached!)}; ${extraMicros(cookie, model.runs.basicCached!)}` },
    { figure: f, measure: 'model of CouchDB 3.4: cookie / Basic, cache disabled', value: versus(model.runs.basicUncached!) },
    { figure: f, measure: `model of CouchDB 3.4: cookie / Basic, ${MANY.users} users over max_objects ${MANY.maxObjects} (scaled 20,000 over 10,000)`, value: `${versus(model.runs.basicMany!)}; ${fixed(slowShare * 100, 0)}% of checks slow` },
  ];
}

/** Runs figure 7: pouchdb-server on `couchStack`, then stacks of its own on the model. */
export async function whySessions(ctx: BenchContext, couchStack: BenchStack): Promise<FigureResult> {
  const pouch = await onPouchdb(ctx, couchStack);
  const model = await onModel(ctx);
  const errors = errorsIn(Object.values(pouch).flat()) + errorsIn(Object.values(model.runs).flat());
  return {
    id: 7,
    title: 'Why sessions: per-request Basic vs the session cookie',
    tools: 'wrk, 1 thread, 16 connections (pouchdb-server) / 8 connections, 30 s timeout (model); first requests: Node http client, one connection each',
    rows: rows(pouch, model),
    notes: [
      `The PBKDF2 backend is a ${MODEL_NAME}; it is not CouchDB. Its cookie came from a real refresh-now.`,
      'pouchdb-server checks its admin password with PBKDF2 at 10 iterations, so Basic costs it little.',
      `The first-request row empties the cache before each pair, as a node restart, 10 idle minutes or a password change does; each node of a cluster has its own cache.`,
      'With the cache, a Basic request costs the model a few tens of µs more than a cookie request (a 5-iteration hash and decoding); the model answers in about 0.1 ms, so this shows as a ratio that a real backend, whose requests cost far more, would not show.',
      `The many-users row sends each request as one of ${MANY.users} users at random to a model whose cache holds ${MANY.maxObjects}: about half the checks miss, as with 20,000 active users over the default 10,000.`,
      `Checks counted by the model during the runs: cached account ${model.checks.cached.slow} slow / ${model.checks.cached.fast} cached; cache disabled ${model.checks.uncached.slow} / ${model.checks.uncached.fast}; many users ${model.checks.many.slow} / ${model.checks.many.fast}.`,
      `${ctx.runs} run(s) per variant, alternating; ${errors} non-2xx or socket errors in all runs.`,
    ],
    data: { model: MODEL_NAME, pouchdb: pouch, pbkdf2Model: model },
  };
}
