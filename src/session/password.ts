/**
 * Reading a session's password from its one configured source. It is read at each login, so a
 * rotated password file is picked up without a restart.
 */
import { describeSource, passwordSecret, readSecretLine, trimLine, type PasswordKeys } from '../credentials/secret.js';

export { MAX_PASSWORD_FILE_BYTES, passwordSecret, type PasswordKeys } from '../credentials/secret.js';

/** Where the password of `session` comes from, for messages (never the password itself). */
export function passwordSource(session: PasswordKeys, env: NodeJS.ProcessEnv = process.env): string {
  return describeSource(passwordSecret(session), env);
}

/** Reads the password; one trailing newline is dropped. Throws ConfigError when missing or empty. */
export async function readPassword(session: PasswordKeys, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return readSecretLine(passwordSecret(session), env);
}

/**
 * What is taken off a password as read: a UTF-8 byte order mark at the start (editors on
 * Windows add one) and one line ending at the end (LF or CRLF). Nothing else: other spaces are
 * part of the password and sent as they are (see whitespaceHint).
 */
export function trimPassword(text: string): string {
  return trimLine(text);
}

const WHITESPACE_NAMES: Record<string, string> = { ' ': 'space', '\t': 'tab', '\n': 'newline', '\r': 'carriage return', '\u00a0': 'no-break space', '\ufeff': 'byte order mark' };

/**
 * When a rejected password starts or ends with whitespace, a hint saying so (which characters,
 * never the password), else undefined: a blank last line or a trailing space in a password file
 * is the usual reason a correct password is refused.
 */
export function whitespaceHint(password: string): string | undefined {
  const lead = /^\s+/.exec(password)?.[0] ?? '';
  const trail = password.length > lead.length ? (/\s+$/.exec(password)?.[0] ?? '') : '';
  if (lead === '' && trail === '') return undefined;
  const names = (run: string) => [...new Set([...run].map((c) => WHITESPACE_NAMES[c] ?? `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`))].join(', ');
  const parts = [lead ? `starts with ${lead.length} whitespace character(s) (${names(lead)})` : '', trail ? `ends with ${trail.length} whitespace character(s) (${names(trail)})` : ''].filter(Boolean);
  return `the password ${parts.join(' and ')}, sent as typed; remove them from the password source if they are not part of it`;
}
