/**
 * `status`: what each session's state file says: generation, times, seconds left, last result.
 * Never the credential (the state file does not hold it) nor a secret.
 */
import { credentialKind } from '../credentials/factory.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';
import { sha256, snapshot } from '../refresh/fresh.js';
import { secondsLeft } from '../state/freshness.js';
import type { StoreLook } from '../fleet/ask-store.js';
import { loadFromOptions, selectSessions, stdOutput, type GlobalOptions } from './context.js';

export interface StatusOptions extends GlobalOptions {
  session?: string;
  json?: boolean;
}

/** One session's status as printed by `status --json`. */
export interface SessionStatus {
  session: string;
  /** The credential kind and what it is about (backend, account or client): never a secret. */
  credential: Record<string, string>;
  generation: number;
  issued: string | null;
  expires: string | null;
  seconds_left: number | null;
  /** How the current cookie was obtained (login with the password, or renewal without it), and when. */
  obtained_by: 'login' | 'renewal' | null;
  obtained_at: string | null;
  last_login: string | null;
  last_renewal: string | null;
  /** The include on disk is the one last written. */
  include_intact: boolean;
  reload_pending: boolean;
  last_result: string | null;
  last_at: string | null;
  last_error: { code: string | undefined; message: string | undefined } | null;
  /** A condition the daemon saw in the last ten minutes that a later success does not undo (e.g. ERR_SESSION_LOOP). */
  alert: { code: string; message: string; at: string } | null;
  /** Why the include or state file cannot be used (not a regular file, a link, too big), or null. */
  file_problem: string | null;
  /** With `cluster:`: what the fleet store holds for the session (never the credential), or why it could not be asked. */
  cluster: ClusterStatus | null;
}

/** The fleet store's view of a session, as `status` shows it. */
export type ClusterStatus =
  | { connected: true; store_generation: number | null; leader: string | null; published_at: string | null; lag: number | null }
  | { connected: false; problem: string };

/** How long an alert from the daemon stays in `status`. */
const ALERT_TTL_MS = 10 * 60_000;

/** Prints the status; exits 0 (it reports, it does not judge). */
export async function status(options: StatusOptions): Promise<ExitCodeValue> {
  const { config } = loadFromOptions(options);
  const now = new Date();
  const rows: SessionStatus[] = [];
  const selected = selectSessions(config, options.session);
  // The Redis client is loaded only with cluster:, and only here.
  const look = config.cluster ? await (await import('../fleet/ask-store.js')).lookAtStore(config.cluster, selected.map((s) => s.name)) : undefined;
  for (const session of selected) {
    const snap = await snapshot(config.state_dir, session);
    const st = snap.state;
    const left = secondsLeft(st, now);
    rows.push({
      session: session.name,
      credential: credentialKind(session).describe(),
      generation: st?.generation ?? 0,
      issued: st?.issued ?? null,
      expires: st?.expires ?? null,
      seconds_left: left === undefined ? null : Math.round(left),
      obtained_by: st?.obtained_by ?? null,
      obtained_at: st?.obtained_at ?? null,
      last_login: st?.last_login ?? null,
      last_renewal: st?.last_renewal ?? null,
      include_intact: snap.include !== undefined && st?.include_sha256 === sha256(snap.include),
      reload_pending: st?.reload_pending ?? false,
      last_result: st?.last?.result ?? null,
      last_at: st?.last?.at ?? null,
      last_error: st?.last?.result === 'error' ? { code: st.last.code, message: st.last.message } : null,
      alert: st?.alert && now.getTime() - Date.parse(st.alert.at) < ALERT_TTL_MS ? st.alert : null,
      file_problem: snap.problem?.message ?? null,
      cluster: look === undefined ? null : clusterStatus(look, session.name, st?.generation ?? 0),
    });
  }
  if (options.json) stdOutput.line(JSON.stringify({ sessions: rows }));
  else for (const r of rows) stdOutput.line(humanLine(r));
  return ExitCode.OK;
}

function clusterStatus(look: StoreLook, name: string, served: number): ClusterStatus {
  if (!look.connected) return { connected: false, problem: `${look.where}: ${look.problem}` };
  const record = look.records.get(name);
  if (!record) return { connected: true, store_generation: null, leader: null, published_at: null, lag: null };
  return { connected: true, store_generation: record.generation, leader: record.issuedBy, published_at: new Date(record.at).toISOString(), lag: Math.max(0, record.generation - served) };
}

function clusterWords(c: ClusterStatus): string {
  if (!c.connected) return `fleet store unreachable: ${c.problem}`;
  if (c.store_generation === null) return 'fleet store: nothing published yet';
  return `fleet store: generation ${c.store_generation} from ${c.leader}${c.lag ? `, ${c.lag} behind it` : ', in step'}`;
}

function humanLine(r: SessionStatus): string {
  if (r.file_problem) return `${r.session}: ${r.file_problem}`;
  if (r.generation === 0 && !r.last_result) return `${r.session}: no session yet (never refreshed)`;
  const left = r.seconds_left === null ? 'no cookie' : r.seconds_left > 0 ? `${r.seconds_left}s left` : `expired ${-r.seconds_left}s ago`;
  const parts = [`${r.session}: generation ${r.generation}`, `issued ${r.issued ?? '-'}`, `expires ${r.expires ?? '-'} (${left})`];
  if (r.obtained_by) parts.push(r.obtained_by === 'renewal' ? 'obtained by renewal (no password)' : 'obtained by login');
  if (!r.include_intact) parts.push('include missing or changed by hand');
  if (r.reload_pending) parts.push('reload pending');
  if (r.alert) parts.push(`alert at ${r.alert.at}: ${r.alert.message}`);
  parts.push(r.last_error ? `last run failed at ${r.last_at}: ${r.last_error.message}` : `last run ok at ${r.last_at ?? '-'}`);
  parts.push(`kind ${r.credential.kind}`);
  if (r.cluster) parts.push(clusterWords(r.cluster));
  return parts.join('; ');
}
