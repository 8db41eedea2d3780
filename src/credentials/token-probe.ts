/**
 * The probe of the Authorization-header kinds: one GET of the session's `probe_path` on the
 * backend with the credential (see tokenProbeVerdict for how the answer is read). Absent when
 * the session names no path: the kind then has no probe.
 */
import { probeCredential, tokenProbeVerdict } from '../session/probe.js';
import type { CredentialKind } from './kind.js';

/** What a token kind's session holds for its probe. */
export interface ProbedSession {
  name: string;
  url: string;
  ca_file?: string | undefined;
  timeout: number;
  probe_path?: string | undefined;
}

/** The probe for `session`, or undefined when it has no `probe_path`. */
export function tokenProbe(session: ProbedSession): CredentialKind['probe'] {
  const path = session.probe_path;
  if (path === undefined) return undefined;
  const base = new URL(session.url);
  // Like a replay's target: the path goes under `url`'s own path prefix, if it has one.
  const url = new URL(`${base.pathname.replace(/\/+$/, '')}${path}`, base.origin);
  return (current) => probeCredential({ url, header: 'authorization', value: current, what: `GET ${path}`, decide: tokenProbeVerdict, session });
}
