/**
 * Logging: pino JSON lines, one per event. Callers bind `component` (and `session` where it
 * applies) with `.child()`, so every line names both. On a terminal the lines are pretty-printed (pino-pretty) instead.
 * Credentials are redacted by path as a second line of defence; the code never logs them.
 */
import pino from 'pino';

export type Logger = pino.Logger;
export type LogLevel = pino.LevelWithSilent;

/** Paths that must never reach a log line, whatever a caller passes. */
export const REDACT_PATHS = ['password', '*.password', 'cookie', '*.cookie', 'headers.cookie', 'headers.authorization', '*.headers.cookie', '*.headers.authorization'];

/**
 * A root logger writing to stderr, so stdout stays for command output: JSON lines, or
 * human-readable lines when stderr is a terminal (and SESSION_REFRESHER_LOG_FORMAT is not "json").
 */
export async function createLogger(level: LogLevel): Promise<Logger> {
  const options: pino.LoggerOptions = {
    level,
    // No base fields: each part binds its own `component` with .child(), exactly once per line.
    base: {},
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (process.stderr.isTTY && process.env.SESSION_REFRESHER_LOG_FORMAT !== 'json') {
    const { default: pretty } = await import('pino-pretty');
    return pino(options, pretty({ destination: 2, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything, for callers that want no logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
