/**
 * Writes to the backend directly (admin Basic auth) while clients work through nginx: new
 * documents with attachments, updates that replace an attachment (new revisions of existing
 * documents), and deletions, interleaved and spread evenly over a given time, so every part of
 * the run sees writes however fast the machine is.
 */
import type { Couch } from './couch.js';
import { adminRequest, randomAttachment } from './couch-data.js';

export interface WriterPlan {
  /** New documents `<prefix>-live-00000`…, each with one attachment. */
  creates: number;
  /** Existing documents given a new revision (field and attachment changed); taken from `existing` in order. */
  updates: number;
  /** Existing documents deleted; taken from the end of `existing`. */
  deletes: number;
  /** The writes are spread evenly over at least this long, so they span several invalidations (a slow backend makes it longer). */
  spreadOverMs: number;
}

export interface WriterResult {
  creates: number;
  updates: number;
  deletes: number;
}

const pause = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

/** Runs `plan` against `db`, one write at a time; throws at the first write the backend refuses. */
export async function writeToBackend(couch: Couch, db: string, existing: string[], plan: WriterPlan): Promise<WriterResult> {
  if (plan.updates + plan.deletes > existing.length) throw new Error('the writer plan touches more documents than exist');
  const ops: (() => Promise<void>)[] = [];
  const done: WriterResult = { creates: 0, updates: 0, deletes: 0 };
  const creates = Array.from({ length: plan.creates }, (_, i) => async () => {
    const _id = `live-${String(i).padStart(5, '0')}`;
    await adminRequest(couch, `/${db}/${_id}`, { method: 'PUT', body: { n: i, _attachments: { 'data.bin': randomAttachment(1024 + (i % 7) * 512) } } });
    done.creates++;
  });
  const updates = existing.slice(0, plan.updates).map((id) => async () => {
    const doc = await adminRequest<Record<string, unknown>>(couch, `/${db}/${id}`);
    const attachments = { ...(doc._attachments as Record<string, unknown>), 'data.bin': randomAttachment(2048) };
    await adminRequest(couch, `/${db}/${id}`, { method: 'PUT', body: { ...doc, updated: true, _attachments: attachments } });
    done.updates++;
  });
  const deletes = existing.slice(existing.length - plan.deletes).map((id) => async () => {
    const doc = await adminRequest<{ _rev: string }>(couch, `/${db}/${id}`);
    await adminRequest(couch, `/${db}/${id}?rev=${doc._rev}`, { method: 'DELETE' });
    done.deletes++;
  });
  // Interleave the three kinds, so every stretch of the run sees each of them.
  const queues = [creates, updates, deletes];
  while (queues.some((q) => q.length > 0)) for (const q of queues) if (q.length > 0) ops.push(q.shift()!);
  const start = Date.now();
  for (const [i, op] of ops.entries()) {
    await pause(start + (i * plan.spreadOverMs) / ops.length - Date.now());
    await op();
  }
  return done;
}
