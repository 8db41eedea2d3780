/**
 * Turns a raw configuration object into a validated `Config`, or into the complete list of
 * problems, one line each, naming the key and the value received (pure).
 */
import type * as z from 'zod';
import { DEFAULT_KIND, kindsWithKey } from './kinds.js';
import { configSchema, type Config } from './schema.js';
import { showKey } from './yaml-file.js';

/** Keys that people try and that must never be echoed, because their value is a secret. */
const SECRET_LOOKING = /pass|secret|token|cookie_value|credential/i;

export type ValidationResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/** Validates `raw`. Never throws for bad input; never echoes the value of an unknown key. */
export function validateConfig(raw: unknown): ValidationResult {
  const result = configSchema.safeParse(raw ?? {}, { reportInput: true });
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, problems: result.error.issues.flatMap((issue) => describeIssue(issue, raw)) };
}

/** One line per problem: an unknown-keys issue gives one line per key. */
function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string | string[] {
  const where = formatPath(issue.path, raw);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const at = where ? `${where}.${showKey(key)}` : showKey(key);
      return `unknown key ${at}${unknownKeyHint(key, issue.path, raw)}`;
    });
  }
  const message = issue.message.replace(/^Invalid input: /, '');
  const key = String(issue.path[issue.path.length - 1] ?? '');
  const received = 'input' in issue && issue.input !== undefined && !SECRET_LOOKING.test(key) && typeof issue.input !== 'object' ? ` (received ${shortJson(redactUrlCredentials(issue.input))})` : '';
  if (issue.code === 'invalid_type' && 'input' in issue && issue.input === undefined) return `${where || 'configuration'}: is required`;
  return `${where || 'configuration'}: ${message}${received}`;
}

/** Literal secrets people write, and the sources that replace them. */
const LITERAL_SECRETS: Record<string, [string, string]> = {
  password: ['password', 'password_file, password_env or password_credential'],
  client_secret: ['client secret', 'client_secret_file, client_secret_env or client_secret_credential'],
  key: ['signing key', 'key_file, key_env or key_credential'],
  api_key: ['API key', 'api_key_file, api_key_env or api_key_credential'],
};

/** Why a key is unknown: a literal secret, a key of another credential kind, or a misspelling. */
function unknownKeyHint(key: string, path: readonly PropertyKey[], raw: unknown): string {
  const literal = LITERAL_SECRETS[key.toLowerCase()];
  if (literal) return `: a literal ${literal[0]} is not accepted; use ${literal[1]}`;
  // Inside a session: name the kinds the key belongs to.
  if (path.length === 2 && path[0] === 'sessions' && typeof path[1] === 'number') {
    const session = Array.isArray((raw as { sessions?: unknown })?.sessions) ? ((raw as { sessions: unknown[] }).sessions[path[1]] as Record<string, unknown> | undefined) : undefined;
    const kind = typeof session?.kind === 'string' ? session.kind : DEFAULT_KIND;
    const owners = kindsWithKey(key);
    if (owners.length > 0) return `: it belongs to kind ${owners.join(' or ')}, and this session is kind ${kind}`;
  }
  return ': remove it or check its spelling';
}

/** A received value as JSON, cut to 80 characters so one problem stays one short line. */
function shortJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

/** Hides the user:password part of anything that looks like a URL, so a message never shows it. */
function redactUrlCredentials(value: unknown): unknown {
  return typeof value === 'string' ? value.replace(/\/\/[^/@\s]*@/g, '//[redacted]@') : value;
}

/** `sessions[0] (couch).url`: the index, and the session's name when it has one. */
function formatPath(path: readonly PropertyKey[], raw: unknown): string {
  let out = '';
  let node: unknown = raw;
  for (const part of path) {
    if (typeof part === 'number') {
      out += `[${part}]`;
      node = Array.isArray(node) ? node[part] : undefined;
      const name = typeof node === 'object' && node !== null ? (node as Record<string, unknown>).name : undefined;
      if (typeof name === 'string') out += ` (${showKey(name)})`;
    } else {
      out += out ? `.${String(part)}` : String(part);
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[String(part)] : undefined;
    }
  }
  return out;
}
