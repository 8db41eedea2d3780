/**
 * Logging: pino JSON lines, one per event, with `component` (and `session` where it applies)
 * bound on every line. Credentials are redacted by path as a second line of defence; the code
 * never logs them in the first place.
 */
import pino from 'pino';

export type Logger = pino.Logger;
export type LogLevel = pino.LevelWithSilent;

/** Paths that must never reach a log line, whatever a caller passes. */
export const REDACT_PATHS = ['password', '*.password', 'cookie', '*.cookie', 'headers.cookie', 'headers.authorization', '*.headers.cookie', '*.headers.authorization'];

/** A root logger writing JSON lines to stderr (fd 2), so stdout stays for command output. */
export function createLogger(level: LogLevel, component: string): Logger {
  return pino(
    {
      level,
      base: { component },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything, for callers that want no logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
