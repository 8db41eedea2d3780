/**
 * `check`: does nginx's configuration agree with the daemon's timing? Each refresh reloads
 * nginx while requests are replayed, so an old worker must be allowed to live at least
 * daemon.replay_timeout (worker_shutdown_timeout), and nginx must wait for the fallback as long
 * as the daemon may take (proxy_read_timeout in @session_refresh). Pure: given the text
 * `nginx -T` printed.
 */
import type { Config } from '../config/schema.js';
import { directiveValues, locationBodies, parseNginxTime, proxyHeader, stripComments } from '../nginx/directives.js';
import { fallbackKeyPath } from '../nginx/fallback-key.js';
import { fallbackReadTimeout } from '../nginx/snippet.js';

/** One line of `check` output: a warning, or an agreement worth stating. */
export interface KitNote {
  warn: boolean;
  what: string;
  detail: string;
}

/** nginx's default proxy_read_timeout, in seconds. */
const NGINX_DEFAULT_READ_TIMEOUT = 60;

/** What `dump` (the output of `nginx -T`) says about the timeouts that must agree with `config`. */
export function kitAgreement(config: Config, dump: string): KitNote[] {
  const text = stripComments(dump);
  const replay = config.daemon.replay_timeout;
  const notes: KitNote[] = [];
  const what = 'nginx worker_shutdown_timeout';
  const shutdown = directiveValues(text, 'worker_shutdown_timeout')[0];
  const seconds = shutdown === undefined ? undefined : parseNginxTime(shutdown);
  if (shutdown === undefined) {
    notes.push({ warn: false, what, detail: `not set: old workers live until their last request ends, so no replay is cut (set it to at least ${replay}s against worker pile-up)` });
  } else if (seconds === undefined) {
    notes.push({ warn: true, what, detail: `"${shutdown}" is not a time nginx-style (e.g. 60s, 1m30s)` });
  } else if (seconds < replay) {
    notes.push({
      warn: true,
      what,
      detail: `${shutdown} is shorter than daemon.replay_timeout (${replay}s): a reload cuts replays still running, with no log line; set worker_shutdown_timeout to at least ${replay}s, or lower daemon.replay_timeout`,
    });
  } else notes.push({ warn: false, what, detail: `${shutdown}, not shorter than daemon.replay_timeout (${replay}s)` });

  const fallbacks = locationBodies(text, '@session_refresh');
  for (const session of config.sessions) {
    const where = `session ${session.name} nginx fallback`;
    const bodies = fallbacks.filter((body) => proxyHeader(body, 'X-Session-Refresher-Session') === session.name);
    if (bodies.length === 0) {
      notes.push({ warn: false, what: where, detail: 'no location @session_refresh sends this session to the daemon (fine when only refresh-now runs)' });
      continue;
    }
    const needed = fallbackReadTimeout(config, session);
    const keyFile = fallbackKeyPath(config);
    for (const body of bodies) {
      // nginx -T shows the include directive in the location and the file's text apart from it.
      const sendsKey = directiveValues(body, 'include').includes(keyFile);
      notes.push(
        sendsKey
          ? { warn: false, what: where, detail: `location @session_refresh includes the fallback key ${keyFile}` }
          : { warn: true, what: where, detail: `location @session_refresh does not include the fallback key ${keyFile}: the daemon refuses its requests with 403; regenerate the snippet with nginx-snippet` },
      );
      const value = directiveValues(body, 'proxy_read_timeout')[0];
      const read = value === undefined ? NGINX_DEFAULT_READ_TIMEOUT : parseNginxTime(value);
      const shown = value === undefined ? `proxy_read_timeout (not set there: nginx's ${NGINX_DEFAULT_READ_TIMEOUT}s unless set around it)` : `proxy_read_timeout ${value}`;
      if (read === undefined || read < needed) {
        notes.push({
          warn: true,
          what: where,
          detail: `${shown} in location @session_refresh is shorter than the ${needed}s the daemon may take (lock_timeout, the login's attempts, daemon.replay_timeout): nginx answers 504 for a replay still running; regenerate the snippet with nginx-snippet`,
        });
      } else notes.push({ warn: false, what: where, detail: `${shown} in location @session_refresh covers the ${needed}s the daemon may take` });
    }
  }
  return notes;
}
