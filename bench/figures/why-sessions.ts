/**
 * Figure 7, why sessions: requests/s through nginx sending per-request Basic credentials
 * (`proxy_set_header Authorization "Basic ..."`) vs the session cookie from the generated
 * include, measured alternately with wrk. Against pouchdb-server, and against the MODEL of
 * CouchDB 3.4's default password check (bench/pbkdf2-model-server.ts: PBKDF2-SHA256, 600,000
 * iterations per Basic request, no cache), whose cookie comes from a real `refresh-now`.
 */
import { alternate } from '../lib/alternate.js';
import { startModelBackend } from '../lib/model.js';
import { fixed, int, ms, type BenchContext, type FigureResult, type Row } from '../lib/report.js';
import { startBenchStack, type BenchStack } from '../lib/stack.js';
import { median } from '../lib/stats.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import { REQUEST_PATH } from './paths.js';

export const MODEL_NAME = "model of CouchDB 3.4's default password check (PBKDF2-SHA256, 600,000 iterations per Basic request, no cache)";

interface Comparison {
  backend: string;
  cookie: WrkResult[];
  basic: WrkResult[];
  ratio: number;
}

async function compare(ctx: BenchContext, backend: string, stack: BenchStack, seconds: number, connections: number): Promise<Comparison> {
  const { name, password } = stack.backend.admin;
  const basicNginx = await stack.variant(`basic-${backend.replace(/\W+/g, '-')}`, { kind: 'basic', authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}` });
  const wrk = (url: string, s = seconds) => runWrk({ url: url + REQUEST_PATH, connections, seconds: s, timeout: 30 });
  await wrk(stack.nginx.url, 1);
  await wrk(basicNginx.url, 1);
  const got = await alternate(ctx.runs, [
    { name: 'cookie', run: () => wrk(stack.nginx.url) },
    { name: 'basic', run: () => wrk(basicNginx.url) },
  ], (v, round, r) => ctx.say(`  fig 7 ${backend} run ${round + 1} ${v}: ${fixed(r.rps, 1)} req/s, p50 ${ms(r.latencyMs.p50)}, errors ${r.non2xx + r.socketErrors}`));
  return { backend, cookie: got.cookie!, basic: got.basic!, ratio: median(got.cookie!.map((r) => r.rps)) / median(got.basic!.map((r) => r.rps)) };
}

function rows(c: Comparison, label: string): Row[] {
  const rps = (rs: WrkResult[]) => median(rs.map((r) => r.rps));
  const p50 = (rs: WrkResult[]) => median(rs.map((r) => r.latencyMs.p50));
  const fmt = (v: number) => (v < 100 ? fixed(v, 1) : int(v));
  return [
    { figure: '7 why sessions', measure: `req/s, cookie / Basic, ${label}`, value: `${fixed(c.ratio, c.ratio < 10 ? 2 : 0)}x (${fmt(rps(c.cookie))} / ${fmt(rps(c.basic))})` },
    { figure: '7 why sessions', measure: `p50 latency, cookie / Basic, ${label}`, value: `${ms(p50(c.cookie))} / ${ms(p50(c.basic))}` },
  ];
}

/** Runs figure 7: pouchdb-server on `couchStack`, then a stack of its own on the model. */
export async function whySessions(ctx: BenchContext, couchStack: BenchStack): Promise<FigureResult> {
  const couch = await compare(ctx, 'pouchdb-server', couchStack, ctx.quick ? 2 : 4, 16);
  const model = await startModelBackend();
  let modelResult: Comparison;
  let counts: Record<string, number>;
  try {
    const stack = await startBenchStack(model, { fallback: false });
    try {
      const login = await stack.cli(['refresh-now']);
      if (login.code !== 0) throw new Error(`refresh-now against the PBKDF2 model failed (${login.code}): ${login.stderr}`);
      modelResult = await compare(ctx, 'PBKDF2 model', stack, ctx.quick ? 5 : 10, 8);
      counts = await model.counts();
    } finally {
      await stack.stop();
    }
  } finally {
    await model.stop();
  }
  const errors = [couch, modelResult].flatMap((c) => [...c.cookie, ...c.basic]).reduce((n, r) => n + r.non2xx + r.socketErrors, 0);
  return {
    id: 7,
    title: 'Why sessions: per-request Basic vs the session cookie',
    tools: 'wrk, 1 thread, 16 connections (pouchdb-server) / 8 connections, 30 s timeout (model)',
    rows: [...rows(couch, 'pouchdb-server'), ...rows(modelResult, 'PBKDF2 model of CouchDB 3.4')],
    notes: [
      `The PBKDF2 backend is a ${MODEL_NAME}; it is not CouchDB. Its cookie came from a real refresh-now.`,
      'pouchdb-server checks its admin password with PBKDF2 at 10 iterations, so Basic costs it little.',
      `${ctx.runs} run(s) per variant, alternating; ${errors} non-2xx or socket errors in all runs.`,
    ],
    data: { model: MODEL_NAME, couch, pbkdf2Model: modelResult, modelCounts: counts },
  };
}
