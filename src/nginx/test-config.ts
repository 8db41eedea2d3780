/**
 * `nginx -t`: does nginx accept its configuration with the include as it now is on disk?
 */
import { ConfigError, NginxTestError } from '../errors.js';
import type { NginxConfig } from '../config/schema.js';
import { keyLine, runCommand } from './run.js';

/** The argv of the test command for this configuration. */
export function nginxTestArgv(nginx: NginxConfig): string[] {
  return [nginx.binary, '-t', '-q', ...(nginx.prefix ? ['-p', nginx.prefix] : []), ...(nginx.config ? ['-c', nginx.config] : [])];
}

/** Resolves when nginx accepts the configuration; throws NginxTestError quoting nginx otherwise. */
export async function testNginxConfig(nginx: NginxConfig): Promise<void> {
  const argv = nginxTestArgv(nginx);
  const result = await runCommand(argv, nginx.command_timeout);
  if (result.spawnError) {
    throw new ConfigError([`nginx.binary: cannot run "${nginx.binary}" (${result.spawnError}); install nginx or set nginx.binary, or set nginx.test: false`], 'nginx');
  }
  if (result.timedOut) throw new NginxTestError(`nginx -t did not finish within ${nginx.command_timeout}s`);
  if (result.exitCode !== 0) throw new NginxTestError(`nginx -t failed: ${keyLine(result.output)}`);
}

/** The argv that prints nginx's whole configuration (`nginx -T`), with the same -p and -c as the test. */
export function nginxDumpArgv(nginx: NginxConfig): string[] {
  return [nginx.binary, '-T', '-q', ...(nginx.prefix ? ['-p', nginx.prefix] : []), ...(nginx.config ? ['-c', nginx.config] : [])];
}

/**
 * nginx's configuration as `nginx -T` prints it (every included file), or why it could not be
 * read (`nginx -T` needs the same rights as `nginx -t`: on Debian, root).
 */
export async function dumpNginxConfig(nginx: NginxConfig): Promise<{ ok: true; text: string } | { ok: false; why: string }> {
  const result = await runCommand(nginxDumpArgv(nginx), nginx.command_timeout);
  if (result.spawnError) return { ok: false, why: `cannot run "${nginx.binary}" (${result.spawnError})` };
  if (result.timedOut) return { ok: false, why: `nginx -T did not finish within ${nginx.command_timeout}s` };
  if (result.exitCode !== 0) return { ok: false, why: `nginx -T failed: ${keyLine(result.output)}` };
  return { ok: true, text: result.stdout };
}
