/**
 * Pure comparison of two views of one database (the backend's and a replica's): which
 * documents are missing or extra, which differ in revisions or deletion, and which attachments
 * differ by digest. Lists are of ids, so a failure can name examples.
 */
import type { DocState } from './couch-data.js';

export interface StateDiff {
  /** On the backend, not in the replica. */
  missing: string[];
  /** In the replica, not on the backend. */
  extra: string[];
  /** Present on both with other leaf revisions, winning revision or deletion state. */
  wrongRevision: string[];
  /** Live documents whose attachment names or digests differ ("id/name"). */
  wrongAttachment: string[];
  /** Attachments compared (live documents present on both). */
  attachmentsChecked: number;
}

/** Compares `actual` with `expected`; an empty diff means `actual` holds exactly what `expected` does. */
export function diffStates(expected: Map<string, DocState>, actual: Map<string, DocState>): StateDiff {
  const diff: StateDiff = { missing: [], extra: [], wrongRevision: [], wrongAttachment: [], attachmentsChecked: 0 };
  for (const id of actual.keys()) if (!expected.has(id)) diff.extra.push(id);
  for (const [id, want] of expected) {
    const got = actual.get(id);
    if (!got) {
      diff.missing.push(id);
      continue;
    }
    if (got.deleted !== want.deleted || got.leaves.join(',') !== want.leaves.join(',') || got.rev !== want.rev) {
      diff.wrongRevision.push(id);
      continue;
    }
    if (want.deleted) continue;
    const names = new Set([...Object.keys(want.attachments ?? {}), ...Object.keys(got.attachments ?? {})]);
    for (const name of names) {
      diff.attachmentsChecked++;
      if (want.attachments?.[name] !== got.attachments?.[name]) diff.wrongAttachment.push(`${id}/${name}`);
    }
  }
  return diff;
}

/** True when the leaf revisions of every document agree (cheap, for polling). */
export function sameLeaves(expected: Map<string, DocState>, actual: Map<string, string[]>): boolean {
  if (expected.size !== actual.size) return false;
  for (const [id, want] of expected) if (actual.get(id)?.join(',') !== want.leaves.join(',')) return false;
  return true;
}

/** Whether a diff is empty. */
export function isEmptyDiff(d: StateDiff): boolean {
  return d.missing.length + d.extra.length + d.wrongRevision.length + d.wrongAttachment.length === 0;
}
