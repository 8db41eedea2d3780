/**
 * What every command needs: the loaded configuration and the sessions it selected.
 */
import { loadConfig, type ConfigFlags } from '../config/load.js';
import type { AnySessionConfig, Config } from '../config/schema.js';
import { UsageError } from '../errors.js';

/** Global options shared by all commands. */
export interface GlobalOptions {
  config?: string;
  stateDir?: string;
  verbose?: boolean;
}

/** Loads the configuration with the command-line overrides. Throws ConfigError. */
export function loadFromOptions(options: GlobalOptions): { config: Config; source: string } {
  const flags: ConfigFlags = {};
  if (options.stateDir !== undefined) flags.stateDir = options.stateDir;
  return loadConfig({ ...(options.config !== undefined ? { path: options.config } : {}), flags });
}

/** The sessions named by --session, or all of them. Throws UsageError for an unknown name. */
export function selectSessions(config: Config, name: string | undefined): AnySessionConfig[] {
  if (name === undefined) return config.sessions;
  const found = config.sessions.filter((s) => s.name === name);
  if (found.length === 0) throw new UsageError(`no session named "${name}"; configured: ${config.sessions.map((s) => s.name).join(', ')}`);
  return found;
}

/** A printer for one command: human lines or one JSON document. */
export interface Output {
  line(text: string): void;
  warn(text: string): void;
}

export const stdOutput: Output = {
  line: (text) => process.stdout.write(`${text}\n`),
  warn: (text) => process.stderr.write(`session-refresher: ${text}\n`),
};
