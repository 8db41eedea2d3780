/**
 * The part of PouchDB 9's API the tests use. PouchDB ships no types, and the DefinitelyTyped
 * ones describe PouchDB 6 and pull in the DOM library, whose typed arrays clash with Node's
 * Buffer types across the project; so the few calls used are declared here.
 */
declare module 'pouchdb' {
  namespace PouchDB {
    interface ChangesResult {
      results: { id: string; seq: number | string; changes: { rev: string }[]; deleted?: boolean }[];
      last_seq: number | string;
    }
    interface AllDocsResult {
      rows: { id: string; key: string; value: { rev: string }; doc?: Record<string, unknown> & { _attachments?: Record<string, unknown> } }[];
    }
    interface ReplicationChange {
      docs_read: number;
      docs_written: number;
    }
    /** A replication: an event emitter that can be cancelled. */
    interface Replication {
      on(event: 'change', listener: (info: ReplicationChange) => void): this;
      on(event: 'paused', listener: (err?: unknown) => void): this;
      on(event: 'active' | 'complete', listener: (info?: unknown) => void): this;
      on(event: 'error' | 'denied', listener: (err: unknown) => void): this;
      cancel(): void;
    }
    interface Database {
      changes(options: { style?: 'all_docs' | 'main_only'; since?: number | string }): Promise<ChangesResult>;
      allDocs(options: { include_docs?: boolean; attachments?: boolean; binary?: boolean }): Promise<AllDocsResult>;
      replicate: { from(source: string | Database, options?: { live?: boolean; retry?: boolean }): Replication };
      destroy(): Promise<unknown>;
    }
    interface Plugin {
      readonly __pouchdbPlugin?: true;
    }
  }
  interface PouchDBStatic {
    new (name: string, options?: { adapter?: string }): PouchDB.Database;
    plugin(plugin: PouchDB.Plugin): PouchDBStatic;
    readonly version: string;
  }
  const PouchDB: PouchDBStatic;
  export default PouchDB;
}

declare module 'pouchdb-adapter-memory' {
  import type PouchDB from 'pouchdb';
  const plugin: Parameters<(typeof PouchDB)['plugin']>[0];
  export default plugin;
}
