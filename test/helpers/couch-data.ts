/**
 * Data on the backend, reached directly with the admin's Basic credentials (never through
 * nginx, never with a session cookie), so it is unaffected by session invalidations: a
 * members-only database, documents with attachments, and the backend's own view of a database
 * (documents, leaf revisions, attachment digests) to check what clients received against.
 */
import { randomBytes } from 'node:crypto';
import type { Couch } from './couch.js';

/** One document as the backend holds it. */
export interface DocState {
  /** Leaf revisions, sorted (one unless there are conflicts). */
  leaves: string[];
  deleted: boolean;
  /** The winning revision of a live document. */
  rev?: string;
  /** Attachment name → digest ("md5-<base64>") of a live document. */
  attachments?: Record<string, string>;
}

/** A fetch to the backend as its server admin; throws with the body on a non-2xx answer. */
export async function adminRequest<T = unknown>(couch: Couch, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const auth = `Basic ${Buffer.from(`${couch.admin.name}:${couch.admin.password}`).toString('base64')}`;
  const res = await fetch(couch.url + path, {
    method: init.method ?? 'GET',
    headers: { authorization: auth, 'content-type': 'application/json' },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path} on the backend answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** Creates `db` readable and writable only by `members` (anonymous and dead-cookie requests get 401). */
export async function createMembersOnlyDb(couch: Couch, db: string, members: string[]): Promise<void> {
  await adminRequest(couch, `/${db}`, { method: 'PUT' });
  await adminRequest(couch, `/${db}/_security`, { method: 'PUT', body: { admins: { names: [], roles: [] }, members: { names: members, roles: [] } } });
}

/** An inline attachment of `size` random bytes. */
export function randomAttachment(size: number, contentType = 'application/octet-stream'): { content_type: string; data: string } {
  return { content_type: contentType, data: randomBytes(size).toString('base64') };
}

/**
 * Writes `count` documents `<prefix>-00000`… with one random attachment each (0.5–8 KiB) and,
 * on every tenth, a second one of 32 KiB; in `_bulk_docs` batches of 100.
 */
export async function seedDocsWithAttachments(couch: Couch, db: string, count: number, prefix = 'doc'): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < count; start += 100) {
    const docs = [];
    for (let i = start; i < Math.min(count, start + 100); i++) {
      const _id = `${prefix}-${String(i).padStart(5, '0')}`;
      ids.push(_id);
      const _attachments: Record<string, unknown> = { 'data.bin': randomAttachment(512 + Math.floor(Math.random() * 7680)) };
      if (i % 10 === 0) _attachments['photo.jpg'] = randomAttachment(32 * 1024, 'image/jpeg');
      docs.push({ _id, n: i, _attachments });
    }
    const results = await adminRequest<{ id: string; ok?: boolean; error?: string }[]>(couch, `/${db}/_bulk_docs`, { method: 'POST', body: { docs } });
    const failed = results.filter((r) => !r.ok);
    if (failed.length > 0) throw new Error(`seeding ${db}: ${failed.length} documents refused, e.g. ${JSON.stringify(failed[0])}`);
  }
  return ids;
}

interface ChangesRow {
  id: string;
  changes: { rev: string }[];
  deleted?: boolean;
}

interface AllDocsRow {
  id: string;
  value: { rev: string };
  doc?: { _attachments?: Record<string, { digest: string }> };
}

/** Every document of `db` (deleted ones too) with its leaves, winning revision and attachment digests. */
export async function backendState(couch: Couch, db: string): Promise<Map<string, DocState>> {
  const changes = await adminRequest<{ results: ChangesRow[] }>(couch, `/${db}/_changes?style=all_docs`);
  const all = await adminRequest<{ rows: AllDocsRow[] }>(couch, `/${db}/_all_docs?include_docs=true`);
  const state = new Map<string, DocState>();
  for (const row of changes.results) {
    state.set(row.id, { leaves: row.changes.map((c) => c.rev).sort(), deleted: row.deleted === true });
  }
  for (const row of all.rows) {
    const doc = state.get(row.id);
    if (!doc) throw new Error(`${row.id} is in _all_docs of ${db} but not in its _changes`);
    doc.rev = row.value.rev;
    doc.attachments = Object.fromEntries(Object.entries(row.doc?._attachments ?? {}).map(([name, a]) => [name, a.digest]));
  }
  return state;
}

/** The current revision of each of `ids` on the backend (undefined when missing or deleted). */
export async function backendRevs(couch: Couch, db: string, ids: string[]): Promise<Map<string, string | undefined>> {
  const res = await adminRequest<{ rows: { key: string; value?: { rev: string; deleted?: boolean }; error?: string }[] }>(couch, `/${db}/_all_docs`, { method: 'POST', body: { keys: ids } });
  return new Map(res.rows.map((r) => [r.key, r.value && !r.value.deleted ? r.value.rev : undefined]));
}
