/**
 * The official CouchDB client, `nano`, as an app uses it: single-document writes
 * (`db.insert(doc, id)`, a PUT each) through nginx, with no credentials (nginx sends the
 * session), `concurrency` at a time. Records which writes the client saw acknowledged, and
 * how the others failed.
 */
import nano from 'nano';

export interface NanoWriteResult {
  /** id → revision, for every write the client saw acknowledged (`ok` with a rev). */
  acknowledged: Map<string, string>;
  /** Writes that failed, with the HTTP status the client saw (0 without one). */
  failed: { id: string; status: number; message: string; at: number }[];
  /** When the first write was sent and the last answer came (ms since the epoch). */
  startedAt: number;
  endedAt: number;
}

/** Writes `count` documents `w-00000`… into `db` at `baseUrl`, `concurrency` in flight at a time. */
export async function writeWithNano(baseUrl: string, db: string, count: number, concurrency: number): Promise<NanoWriteResult> {
  const client = nano(baseUrl).use<{ n: number; payload: string }>(db);
  const result: NanoWriteResult = { acknowledged: new Map(), failed: [], startedAt: Date.now(), endedAt: 0 };
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const n = next++;
      const id = `w-${String(n).padStart(5, '0')}`;
      try {
        const res = await client.insert({ n, payload: `write ${n} of ${count}` }, id);
        if (res.ok && res.rev) result.acknowledged.set(id, res.rev);
        else result.failed.push({ id, status: 0, message: `answered without ok/rev: ${JSON.stringify(res)}`, at: Date.now() });
      } catch (error) {
        const e = error as { statusCode?: number; message?: string; cause?: { code?: string; message?: string } };
        const cause = e.cause?.code ?? e.cause?.message;
        result.failed.push({ id, status: e.statusCode ?? 0, message: `${e.message ?? String(error)}${cause ? ` (${cause})` : ''}`, at: Date.now() });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  result.endedAt = Date.now();
  return result;
}
