/**
 * Reading a session's password from its one configured source. It is read at each login, so a
 * rotated password file is picked up without a restart.
 */
import { join } from 'node:path';
import { ConfigError, describeSystemError } from '../errors.js';
import type { SessionConfig } from '../config/schema.js';
import { UnsafeFileError, readSmallFile } from '../small-file.js';

/**
 * Largest password file read. A password is a line; a bigger file is not a password file (and a
 * FIFO, device or directory is refused without reading: a systemd credential or a secret mounted
 * through a symbolic link is fine, links are followed here).
 */
export const MAX_PASSWORD_FILE_BYTES = 4096;

/** Where the password of `session` comes from, for messages (never the password itself). */
export function passwordSource(session: SessionConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (session.password_file) return `password_file ${session.password_file}`;
  if (session.password_env) return `environment variable ${session.password_env}`;
  return `credential ${session.password_credential} in ${env.CREDENTIALS_DIRECTORY ?? '$CREDENTIALS_DIRECTORY (unset)'}`;
}

/** Reads the password; one trailing newline is dropped. Throws ConfigError when missing or empty. */
export async function readPassword(session: SessionConfig, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const problem = (why: string) => new ConfigError([`session ${session.name}: ${why}`], passwordSource(session, env));
  let value: string | undefined;
  if (session.password_env) {
    value = env[session.password_env];
    if (value === undefined) throw problem(`environment variable ${session.password_env} (password_env) is not set`);
  } else {
    let path: string;
    if (session.password_file) path = session.password_file;
    else {
      const dir = env.CREDENTIALS_DIRECTORY;
      if (!dir) throw problem(`password_credential is set but $CREDENTIALS_DIRECTORY is not; run under systemd with LoadCredential=${session.password_credential}:FILE`);
      path = join(dir, session.password_credential!);
    }
    let bytes: Buffer | undefined;
    try {
      bytes = await readSmallFile(path, { maxBytes: MAX_PASSWORD_FILE_BYTES, followLinks: true });
    } catch (error) {
      if (error instanceof UnsafeFileError) throw problem(`cannot read the password: ${error.message}`);
      throw problem(`cannot read the password from ${path}: ${describeSystemError(error)}`);
    }
    if (bytes === undefined) throw problem(`cannot read the password from ${path}: ENOENT: no such file or directory`);
    value = bytes.toString('utf8');
  }
  value = trimPassword(value);
  if (value === '') throw problem(`the password from ${passwordSource(session, env)} is empty`);
  return value;
}

/**
 * What is taken off a password as read: a UTF-8 byte order mark at the start (editors on
 * Windows add one) and one line ending at the end (LF or CRLF). Nothing else: other spaces are
 * part of the password and sent as they are (see whitespaceHint).
 */
export function trimPassword(text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/\r?\n$/, '');
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
