/**
 * Fills the shipped nginx templates (nginx/*.template) from the configuration (pure, apart from
 * reading the template files). Every value put into nginx syntax is checked against a safe
 * alphabet first: the same rule as for cookies, nothing is escaped, anything odd is refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { AnySessionConfig, Config } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { credentialKind } from '../credentials/factory.js';
import { fallbackKeyPath } from './fallback-key.js';

/** The three parts: the upstream (http { }), the locations (server { }), and the placeholder include. */
export type SnippetPart = 'http' | 'server' | 'placeholder';
export const SNIPPET_PARTS: readonly SnippetPart[] = ['http', 'server', 'placeholder'];

/** The shipped templates: `nginx/` in the package root (the nearest ancestor with package.json). */
export function templateDir(from: URL = new URL('.', import.meta.url)): URL {
  for (let dir = from; ; dir = new URL('../', dir)) {
    if (existsSync(new URL('package.json', dir)) && existsSync(new URL('nginx/server.conf.template', dir))) return new URL('nginx/', dir);
    if (dir.pathname === '/') throw new Error(`cannot find the nginx/ templates above ${from.pathname}`);
  }
}

const SAFE_PATH = /^\/[A-Za-z0-9_./@+-]*$/;

/** Replaces every `{{key}}` in `template`; a key without a value is a bug in the template. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template placeholder {{${key}}} has no value`);
    return value;
  });
}

/**
 * Leak guard: clients may not log in as, or out of, the service account, nor read which it is.
 * The backend's login paths answer 403 (`/_session` always; a kind's own login path too).
 */
export function leakGuard(session: AnySessionConfig): string {
  const paths = new Set(['/_session']);
  if (session.kind === 'couchdb-session' && session.session_path) paths.add(session.session_path);
  // Cloudant trades an IAM access token for the account's IAMSession cookie here.
  if (session.kind === 'cloudant-iam') paths.add('/_iam_session');
  const blocks = [...paths].filter((p) => SAFE_PATH.test(p)).map((p) => `location = ${p} {\n    return 403;\n}\n`);
  return ['# Leak guard: clients may not log in as, or out of, the service account.', ...blocks].join('\n');
}

/** The values the templates use for one session. Throws ConfigError for a value unsafe in nginx syntax. */
export function snippetValues(config: Config, session: AnySessionConfig, version: string): Record<string, string> {
  const problems: string[] = [];
  const backend = new URL(session.url);
  const port = backend.port || (backend.protocol === 'https:' ? '443' : '80');
  const host = backend.hostname.startsWith('[') ? backend.hostname : backend.hostname.includes(':') ? `[${backend.hostname}]` : backend.hostname;
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) problems.push(`sessions (${session.name}).url: host "${backend.hostname}" cannot be written into nginx config`);
  if (backend.pathname !== '/') problems.push(`sessions (${session.name}).url: nginx-snippet supports a backend at "/" only (got path ${backend.pathname}); adapt the proxy_pass by hand`);
  if (!SAFE_PATH.test(session.include)) problems.push(`sessions (${session.name}).include: "${session.include}" has characters nginx-snippet will not write into nginx config`);
  const listen = config.daemon.listen;
  const fallback = listen.startsWith('unix:') ? `${listen}:` : listen;
  if (listen.startsWith('unix:') && !SAFE_PATH.test(listen.slice(5))) problems.push(`daemon.listen: "${listen}" has characters nginx-snippet will not write into nginx config`);
  const keyFile = fallbackKeyPath(config);
  if (!SAFE_PATH.test(keyFile)) problems.push(`daemon.fallback_key_file: "${keyFile}" has characters nginx-snippet will not write into nginx config`);
  if (problems.length > 0) throw new ConfigError(problems, 'nginx-snippet');
  const https = backend.protocol === 'https:';
  const ssl = https
    ? [
        '',
        '    proxy_ssl_server_name on;',
        `    proxy_ssl_name ${backend.hostname};`,
        ...(session.ca_file && SAFE_PATH.test(session.ca_file) ? ['    proxy_ssl_verify on;', `    proxy_ssl_trusted_certificate ${session.ca_file};`] : []),
      ].join('\n')
    : '';
  const kind = credentialKind(session);
  const cookieKind = kind.header === 'cookie';
  return {
    version,
    session: session.name,
    variable: session.variable,
    credential: kind.label,
    cookie_value: cookieKind ? `$${session.variable}` : '""',
    authorization_value: cookieKind ? '""' : `$${session.variable}`,
    leak_guard: leakGuard(session),
    include: session.include,
    upstream: `session_refresher_${session.name.replace(/[.-]/g, '_')}`,
    backend_host: `${host}:${port}`,
    backend_scheme: https ? 'https' : 'http',
    ssl,
    fallback,
    fallback_key_file: keyFile,
    replay_timeout: String(Math.ceil(config.daemon.replay_timeout)),
    fallback_timeout: String(fallbackReadTimeout(config, session)),
  };
}

/**
 * Seconds nginx may wait for the fallback's answer (its proxy_read_timeout): the daemon may first
 * wait for another run's lock (lock_timeout), then log in (every attempt's timeout, plus up to
 * 5 s of backoff between retries), then replay (daemon.replay_timeout). A shorter wait would
 * make nginx answer 504 for a replay the daemon is still allowed to run.
 */
export function fallbackReadTimeout(config: Config, session: AnySessionConfig): number {
  return Math.ceil(config.lock_timeout + session.timeout * (session.retries + 1) + 5 * session.retries + config.daemon.replay_timeout);
}

/**
 * Keeps or drops the blocks between `#>fallback` and `#<fallback` lines (the 401 fallback to
 * the daemon), and removes the marker lines themselves.
 */
export function selectFallback(template: string, withFallback: boolean): string {
  const out: string[] = [];
  let inside = false;
  for (const line of template.split('\n')) {
    const marker = line.trim();
    if (marker === '#>fallback') inside = true;
    else if (marker === '#<fallback') inside = false;
    else if (withFallback || !inside) out.push(line);
  }
  return out.join('\n');
}

/** Renders one part for one session from the shipped template. `withFallback: false` is for cron-only setups (no daemon). */
export function renderSnippet(part: SnippetPart, config: Config, session: AnySessionConfig, version: string, options: { withFallback?: boolean; templateDir?: URL } = {}): string {
  const template = readFileSync(new URL(`${part}.conf.template`, options.templateDir ?? templateDir()), 'utf8');
  return fillTemplate(selectFallback(template, options.withFallback ?? true), snippetValues(config, session, version));
}
