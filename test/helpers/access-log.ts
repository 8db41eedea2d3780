/**
 * nginx's access log as tests read it: one JSON object a request, with the status the client
 * received. A request that nginx routed internally to @session_refresh is one line, with the
 * fallback's final status as `status` and every upstream answer in `upstream_status`
 * (e.g. "401 : 200": the backend refused it, the replay succeeded).
 */
import { readFile } from 'node:fs/promises';

/** One client request as nginx logged it. */
export interface AccessEntry {
  /** The status sent to the client. */
  status: number;
  method: string;
  /** The URI as the client sent it (before any internal redirect). */
  uri: string;
  /** nginx's `$upstream_status`: each upstream's answer, in order; "" when none was asked. */
  upstream_status: string;
}

/** The `log_format` name the test nginx uses for its access log. */
export const ACCESS_LOG_FORMAT = 'sr_clients';

/** The http-level directives that log every request to `path` as one JSON line. */
export function accessLogDirectives(path: string): string {
  const fields = `{"status":$status,"method":"$request_method","uri":"$request_uri","upstream_status":"$upstream_status"}`;
  return `  log_format ${ACCESS_LOG_FORMAT} escape=json '${fields}';\n  access_log ${path} ${ACCESS_LOG_FORMAT};`;
}

/** Every entry logged so far (nginx writes each line when its request ends). */
export async function readAccessLog(path: string): Promise<AccessEntry[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as AccessEntry);
}

/** Counts of items by a key, for diagnostics ({ "PUT /writes/w-N": 12 }). */
export function tally<T>(entries: T[], key: (e: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of entries) counts[key(e)] = (counts[key(e)] ?? 0) + 1;
  return counts;
}
