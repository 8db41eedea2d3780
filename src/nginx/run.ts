/**
 * Running an external command (nginx -t, a reload command) with a timeout, without a shell.
 */
import { execa } from 'execa';

export interface CommandResult {
  exitCode: number | undefined;
  output: string;
  /** stdout alone (e.g. the configuration `nginx -T` prints). */
  stdout: string;
  /** Set when the command could not be started at all (e.g. ENOENT). */
  spawnError?: string | undefined;
  timedOut: boolean;
}

/** Runs `argv` and collects stdout+stderr; never throws. */
export async function runCommand(argv: readonly string[], timeoutSeconds: number): Promise<CommandResult> {
  const [file, ...args] = argv;
  const result = await execa(file!, args, { reject: false, all: true, stdin: 'ignore', timeout: timeoutSeconds * 1000, env: { LC_ALL: 'C' } });
  const spawnError = result.failed && result.exitCode === undefined && !result.timedOut ? (result.cause as NodeJS.ErrnoException | undefined)?.code ?? 'failed to start' : undefined;
  return { exitCode: result.exitCode, output: String(result.all ?? ''), stdout: String(result.stdout ?? ''), spawnError, timedOut: result.timedOut };
}

/** The most telling line of a command's output: the first [emerg]/[alert]/error line, else the last line. */
export function keyLine(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /\[(emerg|alert|crit|error)\]|error|failed/i.test(l)) ?? lines[lines.length - 1] ?? '(no output)';
}
