/**
 * Keeping the daemon's memory flat while it streams large bodies.
 *
 * Nothing holds a streamed body: backpressure keeps a few chunks in flight. But every socket read
 * allocates a fresh buffer (64 KB for a large body) that is garbage once it has been written on,
 * and V8 frees those buffers only when it collects the young generation. Streaming allocates so
 * little on the JS heap that no collection comes until V8's limits on memory outside the heap are
 * reached: a 64 MB body raised the peak RSS by ~33 MB on Node.js 20 and ~60 MB on Node.js 24,
 * whose limits also count the heap's. A young-generation collection after every few MB streamed
 * bounds that garbage on every version; with a few chunks live it takes well under a millisecond.
 */
import { Transform } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes streamed (all streams together) between two young-generation collections. */
export const COLLECT_EVERY_BYTES = 4 * 1024 * 1024;

type Collect = (options: { type: 'minor' | 'major'; execution: 'sync' | 'async' }) => void;

let collect: Collect | undefined;
let streamed = 0;

/**
 * V8's `gc` function, without starting Node.js with --expose-gc: the flag is set just long enough
 * for a new context to get the function, which collects this process's heap. Made once, on the
 * first large body. Should a Node.js refuse, streaming goes on without the collections.
 */
function collector(): Collect {
  if (!collect) {
    try {
      setFlagsFromString('--expose-gc');
      const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
      collect = typeof gc === 'function' ? (gc as Collect) : () => undefined;
    } catch {
      collect = () => undefined;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  return collect;
}

/** Counts `bytes` as streamed; runs a young-generation collection each time the total passes {@link COLLECT_EVERY_BYTES}. */
function countStreamed(bytes: number): void {
  streamed += bytes;
  if (streamed < COLLECT_EVERY_BYTES) return;
  streamed = 0;
  collector()({ type: 'minor', execution: 'sync' });
}

/** A pass-through stage for `pipeline` that counts what passes with {@link countStreamed}. */
export function streamedBytesCounter(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      countStreamed(chunk.length);
      callback(null, chunk);
    },
  });
}
