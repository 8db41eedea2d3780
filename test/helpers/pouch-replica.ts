/**
 * PouchDB as an app uses it: the npm `pouchdb` library with an in-memory local database
 * (`pouchdb-adapter-memory`, nothing written to disk) pulling a remote database through nginx
 * with live replication and `retry: true`. Records what the replication reported, and reads
 * the local copy back (revisions, attachment bytes) to compare with the backend.
 */
import { createHash } from 'node:crypto';
import PouchDB from 'pouchdb';
import memoryAdapter from 'pouchdb-adapter-memory';
import type { DocState } from './couch-data.js';
import { sameLeaves } from './doc-diff.js';

PouchDB.plugin(memoryAdapter);

/** What the replication told its app. */
export interface ReplicationReport {
  /** Documents written to the local database so far (the replication's own running total). */
  docsWritten: number;
  /** HTTP statuses of errors the replication reported (`error`, or `paused` with an error), e.g. 401. */
  errorStatuses: number[];
  /** The error that ended the replication, when it ended ('error' event). */
  fatal?: string;
  /** Set when the replication ended: `error`, or `complete` (a live one completes only when cancelled, by `close()` or by PouchDB itself). */
  ended?: 'error' | 'complete';
}

export interface PullReplica {
  report: ReplicationReport;
  /** Resolves when the replication ends on its own ('error' or 'complete'). */
  ended: Promise<void>;
  /** Every local document (deleted ones too) in the shape `backendState` returns; digests computed from the bytes. */
  state(): Promise<Map<string, DocState>>;
  /** Leaf revisions only (cheap), to poll for completion. */
  leaves(): Promise<Map<string, string[]>>;
  /** Stops the replication and discards the local database. */
  close(): Promise<void>;
}

const md5 = (data: Buffer) => `md5-${createHash('md5').update(data).digest('base64')}`;

/** Starts `local.replicate.from(remoteUrl, { live: true, retry: true })` into a fresh in-memory database. */
export function pullLive(remoteUrl: string): PullReplica {
  const local = new PouchDB(`replica-${process.pid}-${Date.now()}`, { adapter: 'memory' });
  const report: ReplicationReport = { docsWritten: 0, errorStatuses: [] };
  const statusOf = (e: unknown) => Number((e as { status?: number } | undefined)?.status ?? 0);
  const replication = local.replicate.from(remoteUrl, { live: true, retry: true });
  const ended = new Promise<void>((resolve) => {
    replication.on('change', (info) => void (report.docsWritten = info.docs_written));
    replication.on('paused', (err) => void (err ? report.errorStatuses.push(statusOf(err)) : undefined));
    replication.on('error', (err) => {
      report.errorStatuses.push(statusOf(err));
      report.fatal = `${statusOf(err)} ${(err as { message?: string }).message ?? String(err)}`;
      report.ended = 'error';
      resolve();
    });
    replication.on('complete', () => {
      report.ended ??= 'complete';
      resolve();
    });
  });
  let closed = false;
  return {
    report,
    ended,
    async leaves() {
      const changes = await local.changes({ style: 'all_docs', since: 0 });
      return new Map(changes.results.map((r) => [r.id, r.changes.map((c) => c.rev).sort()]));
    },
    async state() {
      const changes = await local.changes({ style: 'all_docs', since: 0 });
      const state = new Map<string, DocState>(changes.results.map((r) => [r.id, { leaves: r.changes.map((c) => c.rev).sort(), deleted: r.deleted === true }]));
      const all = await local.allDocs({ include_docs: true, attachments: true, binary: true });
      for (const row of all.rows) {
        const doc = state.get(row.id);
        if (!doc || !row.doc) continue;
        doc.rev = row.value.rev;
        const attachments = (row.doc._attachments ?? {}) as Record<string, { data: Buffer }>;
        doc.attachments = Object.fromEntries(Object.entries(attachments).map(([name, a]) => [name, md5(a.data)]));
      }
      return state;
    },
    async close() {
      if (closed) return;
      closed = true;
      replication.cancel();
      await ended;
      await local.destroy();
    },
  };
}

/**
 * Polls the replica's leaf revisions until they equal `expected`'s; stops early when the
 * replication ends on its own. Resolves with whether they matched and how long it waited.
 */
export async function waitForReplica(replica: PullReplica, expected: Map<string, DocState>, timeoutMs: number): Promise<{ matched: boolean; waitedMs: number }> {
  const start = Date.now();
  let ended = false;
  void replica.ended.then(() => (ended = true));
  for (;;) {
    if (sameLeaves(expected, await replica.leaves())) return { matched: true, waitedMs: Date.now() - start };
    if (ended || Date.now() - start > timeoutMs) return { matched: false, waitedMs: Date.now() - start };
    await Promise.race([new Promise((r) => setTimeout(r, 250)), replica.ended]);
  }
}
