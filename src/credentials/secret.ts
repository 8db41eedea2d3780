/**
 * Reading a secret (password, client secret, signing key, API key) from its one configured source: a
 * file, an environment variable, or a systemd credential. It is read at each use, so a rotated
 * file is picked up without a restart. Messages name the source, never the secret.
 */
import { join } from 'node:path';
import type { AnySessionConfig } from '../config/schema.js';
import { ConfigError, describeSystemError } from '../errors.js';
import { UnsafeFileError, readSmallFileSync } from '../small-file.js';

/** Where one secret of one session comes from: the keys `<prefix>_file|_env|_credential`. */
export interface SecretSource {
  /** The session's name, for messages. */
  session: string;
  /** Who owns the secret, for messages, when not a session (`cluster`). */
  owner?: string | undefined;
  /** The key prefix (`password`, `client_secret`, `key`), for messages. */
  prefix: string;
  /** What the secret is (`password`, `client secret`, `signing key`), for messages. */
  what: string;
  file?: string | undefined;
  env?: string | undefined;
  credential?: string | undefined;
  /** Largest file read. */
  maxBytes: number;
}

/**
 * Largest password or client secret file read. A password is a line; a bigger file is not a
 * password file (and a FIFO, device or directory is refused without reading).
 */
export const MAX_PASSWORD_FILE_BYTES = 4096;
/** Largest signing key file read (an RSA 4096 PEM is about 3.3 KiB). */
export const MAX_KEY_FILE_BYTES = 16 * 1024;

/** The password keys of a session (couchdb-session, basic). */
export interface PasswordKeys {
  name: string;
  password_file?: string | undefined;
  password_env?: string | undefined;
  password_credential?: string | undefined;
}

/** The secret source of a session's password. */
export function passwordSecret(session: PasswordKeys): SecretSource {
  return { session: session.name, prefix: 'password', what: 'password', file: session.password_file, env: session.password_env, credential: session.password_credential, maxBytes: MAX_PASSWORD_FILE_BYTES };
}

/** The one long-term secret of a session of any kind: where it comes from. */
export function sessionSecret(session: AnySessionConfig): SecretSource {
  switch (session.kind) {
    case 'couchdb-session':
    case 'basic':
      return passwordSecret(session);
    case 'oauth2-client-credentials':
      return { session: session.name, prefix: 'client_secret', what: 'client secret', file: session.client_secret_file, env: session.client_secret_env, credential: session.client_secret_credential, maxBytes: MAX_PASSWORD_FILE_BYTES };
    case 'jwt':
      return { session: session.name, prefix: 'key', what: 'signing key', file: session.key_file, env: session.key_env, credential: session.key_credential, maxBytes: MAX_KEY_FILE_BYTES };
    case 'cloudant-iam':
      return { session: session.name, prefix: 'api_key', what: 'API key', file: session.api_key_file, env: session.api_key_env, credential: session.api_key_credential, maxBytes: MAX_PASSWORD_FILE_BYTES };
  }
}

/** Who the secret belongs to, for messages: `session couch`, `cluster`. */
function ownerOf(source: SecretSource): string {
  return source.owner ?? `session ${source.session}`;
}

/** Where the secret comes from, for messages (never the secret itself). */
export function describeSource(source: SecretSource, env: NodeJS.ProcessEnv = process.env): string {
  if (source.file) return `${source.prefix}_file ${source.file}`;
  if (source.env) return `environment variable ${source.env}`;
  return `credential ${source.credential} in ${env.CREDENTIALS_DIRECTORY ?? '$CREDENTIALS_DIRECTORY (unset)'}`;
}

/**
 * Reads the secret as bytes decoded as UTF-8, untrimmed. Throws ConfigError when it is missing,
 * unreadable, or not a small regular file (links are followed: systemd credentials and mounted
 * secrets are links).
 */
export async function readSecretText(source: SecretSource, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const problem = (why: string) => new ConfigError([`${ownerOf(source)}: ${why}`], describeSource(source, env));
  if (source.env) {
    const value = env[source.env];
    if (value === undefined) throw problem(`environment variable ${source.env} (${source.prefix}_env) is not set`);
    return value;
  }
  let path: string;
  if (source.file) path = source.file;
  else {
    const dir = env.CREDENTIALS_DIRECTORY;
    if (!dir) throw problem(`${source.prefix}_credential is set but $CREDENTIALS_DIRECTORY is not; run under systemd with LoadCredential=${source.credential}:FILE`);
    path = join(dir, source.credential!);
  }
  let bytes: Buffer | undefined;
  try {
    // At most 16 KiB of a regular file, opened without blocking: read at once, where five trips
    // through the thread pool cost a login about a millisecond in an otherwise idle daemon.
    bytes = readSmallFileSync(path, { maxBytes: source.maxBytes, followLinks: true });
  } catch (error) {
    if (error instanceof UnsafeFileError) throw problem(`cannot read the ${source.what}: ${error.message}`);
    throw problem(`cannot read the ${source.what} from ${path}: ${describeSystemError(error)}`);
  }
  if (bytes === undefined) throw problem(`cannot read the ${source.what} from ${path}: ENOENT: no such file or directory`);
  return bytes.toString('utf8');
}

/**
 * Reads a one-line secret: a UTF-8 byte order mark and one line ending (LF or CRLF) are taken
 * off, nothing else. Throws ConfigError when the result is empty.
 */
export async function readSecretLine(source: SecretSource, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const value = trimLine(await readSecretText(source, env));
  if (value === '') throw new ConfigError([`${ownerOf(source)}: the ${source.what} from ${describeSource(source, env)} is empty`], describeSource(source, env));
  return value;
}

/** A line as read: no byte order mark at the start, no line ending at the end. */
export function trimLine(text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/\r?\n$/, '');
}
