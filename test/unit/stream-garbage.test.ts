/**
 * The daemon's bound on memory while it streams bodies: a young-generation collection after every
 * COLLECT_EVERY_BYTES streamed, on whichever Node.js runs the tests (the 64 MB body test in
 * faults-daemon measures what it buys).
 */
import assert from 'node:assert/strict';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { COLLECT_EVERY_BYTES, streamedBytesCounter } from '../../src/daemon/stream-garbage.js';

/** Young-generation collections seen until `stop()`. */
function watchMinorCollections(): { stop: () => Promise<number> } {
  let minor = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries() as (PerformanceEntry & { detail?: { kind?: number } })[]) {
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop: async () => {
      // Entries are delivered on a later turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, 0));
      observer.disconnect();
      return minor;
    },
  };
}

test(`streaming twice COLLECT_EVERY_BYTES through the counter passes every byte and collects the young generation twice (${process.version})`, async () => {
  const watch = watchMinorCollections();
  const chunk = Buffer.alloc(64 * 1024);
  const chunks = (2 * COLLECT_EVERY_BYTES) / chunk.length;
  let received = 0;
  await pipeline(
    Readable.from((function* () {
      for (let i = 0; i < chunks; i++) yield chunk;
    })()),
    streamedBytesCounter(),
    new Writable({
      write(data: Buffer, _encoding, callback) {
        received += data.length;
        callback();
      },
    }),
  );
  assert.equal(received, 2 * COLLECT_EVERY_BYTES, 'every byte passed through unchanged');
  assert.ok((await watch.stop()) >= 2, 'two collections for twice the step');
});
