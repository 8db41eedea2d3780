/**
 * Loads the configuration: defaults (in the schema) <- YAML file <- SESSION_REFRESHER_* env <- flags.
 * Every problem from every layer is collected and reported at once in one ConfigError.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, describeSystemError } from '../errors.js';
import { UnsafeFileError, readSmallFileSync } from '../small-file.js';
import { applyEnv } from './env.js';
import { includeConflicts } from './paths.js';
import type { Config } from './schema.js';
import { validateConfig } from './validate.js';
import { parseYamlConfig } from './yaml-file.js';

export const DEFAULT_CONFIG_PATH = '/etc/session-refresher/config.yaml';

/**
 * Largest configuration file read: a session takes about 200 bytes, so this holds hundreds. A
 * bigger file is refused before it is parsed, so parsing can never hold the daemon's event loop
 * for long (a SIGHUP re-reads the file there).
 */
export const MAX_CONFIG_BYTES = 64 * 1024;

/** Overrides given on the command line; they win over the file and the environment. */
export interface ConfigFlags {
  stateDir?: string;
  logLevel?: string;
}

export interface LoadOptions {
  /** Path from --config; falls back to $SESSION_REFRESHER_CONFIG, then DEFAULT_CONFIG_PATH. */
  path?: string;
  env?: NodeJS.ProcessEnv;
  flags?: ConfigFlags;
}

/** A loaded configuration and the file it came from (undefined when built from env alone). */
export interface LoadedConfig {
  config: Config;
  source: string;
}

/** Loads and validates; throws ConfigError listing every problem. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const explicit = options.path ?? env.SESSION_REFRESHER_CONFIG;
  const path = explicit ?? DEFAULT_CONFIG_PATH;
  const problems: string[] = [];

  let raw: Record<string, unknown> = {};
  let fileFound = true;
  let bytes: Buffer | undefined;
  try {
    bytes = readSmallFileSync(path, { maxBytes: MAX_CONFIG_BYTES, followLinks: true });
  } catch (error) {
    if (error instanceof UnsafeFileError) throw new ConfigError([`cannot use ${path} as the configuration: it ${error.reason}; pass --config FILE with the configuration file`], path, { cause: error });
    throw new ConfigError([`cannot read ${path}: ${describeSystemError(error)}; pass --config FILE`], path, { cause: error });
  }
  if (bytes !== undefined) raw = parseYamlConfig(bytes.toString('utf8'), problems);
  else if (!explicit) fileFound = false;
  else throw new ConfigError([`cannot read ${path}: ENOENT: no such file or directory; pass --config FILE`], path);

  const withEnv = applyEnv(raw, env);
  problems.push(...withEnv.problems);
  const layered = withEnv.raw;
  if (options.flags?.stateDir !== undefined) layered.state_dir = options.flags.stateDir;
  if (options.flags?.logLevel !== undefined) layered.log_level = options.flags.logLevel;

  const source = fileFound ? path : 'environment';
  if (!fileFound && layered.sessions === undefined) {
    throw new ConfigError([`no configuration file at ${path} and no sessions in the environment; pass --config FILE`], source);
  }
  const result = validateConfig(layered);
  if (!result.ok) problems.push(...result.problems);
  else problems.push(...includeConflicts(result.config, fileFound ? path : undefined, realPath, env.CREDENTIALS_DIRECTORY));
  if (problems.length > 0 || !result.ok) throw new ConfigError(problems, source);
  return { config: result.config, source };
}

/**
 * The path `path` refers to: symbolic links resolved as far as the path exists, the missing
 * rest appended (an include is often not created yet).
 */
export function realPath(path: string): string {
  const absolute = resolve(path);
  try {
    return realpathSync.native(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(realPath(parent), basename(absolute));
  }
}
