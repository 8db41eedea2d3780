/**
 * Line-by-line watching of a child process's output, so tests wait for an event ("server
 * started", "the 3rd login was logged") instead of sleeping.
 */
import type { Readable } from 'node:stream';

export class LineWatcher {
  readonly lines: string[] = [];
  private waiters: { predicate: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  private buffer = '';

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        // eslint-disable-next-line no-control-regex
        const line = this.buffer.slice(0, nl).replace(/\x1b\[[0-9;]*m/g, '');
        this.buffer = this.buffer.slice(nl + 1);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (!w.predicate(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
  }

  /** Lines seen so far that match. */
  count(pattern: RegExp): number {
    return this.lines.filter((l) => pattern.test(l)).length;
  }

  /**
   * Resolves with the first matching line at or after line `from` (default 0: lines already
   * seen count too; pass `lines.length` to wait for a new one).
   */
  waitFor(pattern: RegExp, timeoutMs = 20_000, what = String(pattern), from = 0): Promise<string> {
    const seen = this.lines.slice(from).find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last lines:\n${this.lines.slice(-10).join('\n')}`)), timeoutMs);
      this.waiters.push({
        predicate: (l) => pattern.test(l),
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }
}
