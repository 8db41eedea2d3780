/**
 * Maps `SESSION_REFRESHER_*` environment variables onto the raw configuration object (pure).
 *
 *   SESSION_REFRESHER_STATE_DIR=/x              -> state_dir
 *   SESSION_REFRESHER_NGINX_PID_FILE=/run/n.pid -> nginx.pid_file (likewise DAEMON_*)
 *   SESSION_REFRESHER_SESSION_COUCH_URL=http://…  -> sessions[name=couch].url
 *
 * Session names match case-insensitively, with "-" and "." written as "_". A variable naming a
 * session that the file does not have creates it, so a whole session can come from the
 * environment. Values of numeric and boolean keys are read as YAML scalars ("30" is a number,
 * "true" a boolean); every other value stays the string it is (a username "007" stays "007").
 */
import { parse as parseYaml } from 'yaml';
import { NON_STRING_KEYS, SECTIONS, SESSION_KEYS, TOP_KEYS } from './schema.js';

export const ENV_PREFIX = 'SESSION_REFRESHER_';
/** Variables with the prefix that are not configuration keys. */
export const ENV_RESERVED = new Set(['SESSION_REFRESHER_CONFIG', 'SESSION_REFRESHER_LOG_FORMAT']);

type Raw = Record<string, unknown>;

/** The env variable that sets `key` at top level. */
export function envNameForTop(key: string): string {
  return ENV_PREFIX + key.toUpperCase();
}
/** The env variable that sets `<section>.<key>` (e.g. nginx.pid_file). */
export function envNameForSection(section: keyof typeof SECTIONS, key: string): string {
  return `${ENV_PREFIX}${section.toUpperCase()}_${key.toUpperCase()}`;
}
/** The env variable that sets `<key>` of the session named `name`. */
export function envNameForSession(name: string, key: string): string {
  return `${ENV_PREFIX}SESSION_${envSegment(name)}_${key.toUpperCase()}`;
}

function envSegment(name: string): string {
  return name.toUpperCase().replace(/[-.]/g, '_');
}

function scalar(value: string): unknown {
  try {
    const parsed: unknown = parseYaml(value);
    // Only plain scalars: a value that looks like YAML structure stays a string.
    return parsed === null || typeof parsed === 'object' ? value : parsed;
  } catch {
    return value;
  }
}

/**
 * Applies the environment onto `raw` (mutating a copy) and returns it with the problems found:
 * unknown variables are problems, like unknown keys in the file.
 */
export function applyEnv(raw: Raw, env: NodeJS.ProcessEnv): { raw: Raw; problems: string[] } {
  const out: Raw = structuredClone(raw);
  const problems: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || ENV_RESERVED.has(name) || value === undefined) continue;
    const rest = name.slice(ENV_PREFIX.length);
    if (!applyOne(out, rest, value)) problems.push(`unknown environment variable ${name} (see README "Configuration" for the variable of each key)`);
  }
  return { raw: out, problems };
}

function typed(key: string, value: string): unknown {
  return NON_STRING_KEYS.has(key) ? scalar(value) : value;
}

function applyOne(out: Raw, rest: string, value: string): boolean {
  const top = TOP_KEYS.find((k) => k.toUpperCase() === rest);
  if (top) {
    out[top] = typed(top, value);
    return true;
  }
  for (const [section, keys] of Object.entries(SECTIONS)) {
    const head = `${section.toUpperCase()}_`;
    if (!rest.startsWith(head)) continue;
    const key = keys.find((k) => k.toUpperCase() === rest.slice(head.length));
    if (!key) return false;
    const target = isRecord(out[section]) ? (out[section] as Raw) : (out[section] = {} as Raw);
    target[key] = typed(key, value);
    return true;
  }
  if (rest.startsWith('SESSION_')) {
    const tail = rest.slice('SESSION_'.length);
    // Longest key first, so PASSWORD_FILE is not read as a session named "X_PASSWORD" + FILE.
    const key = [...SESSION_KEYS].sort((a, b) => b.length - a.length).find((k) => tail.endsWith(`_${k.toUpperCase()}`));
    if (!key) return false;
    const segment = tail.slice(0, tail.length - key.length - 1);
    if (segment === '') return false;
    const sessions = Array.isArray(out.sessions) ? out.sessions : (out.sessions = []);
    let session = sessions.find((s: unknown) => isRecord(s) && typeof s.name === 'string' && envSegment(s.name) === segment) as Raw | undefined;
    if (!session) {
      session = { name: segment.toLowerCase().replace(/_/g, '-') };
      sessions.push(session);
    }
    session[key] = typed(key, value);
    return true;
  }
  return false;
}

function isRecord(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
