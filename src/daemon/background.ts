/**
 * Work the daemon runs behind a request or a pass (reloads, verification, state notes), tracked
 * so that shutdown can wait for it and an unexpected failure is logged, never lost.
 */
import type { Logger } from '../log.js';

export class Background {
  private readonly jobs = new Set<Promise<void>>();

  constructor(private readonly log: Logger) {}

  /** Runs `job` in the background; an error it throws is logged as unexpected. */
  track(job: Promise<unknown>): void {
    const tracked = job.then(
      () => undefined,
      (error: unknown) => this.log.error({ err: error }, 'unexpected error in background work'),
    );
    this.jobs.add(tracked);
    void tracked.finally(() => this.jobs.delete(tracked));
  }

  /** Resolves when every job tracked so far has finished. */
  async drain(): Promise<void> {
    await Promise.all(this.jobs);
  }
}
