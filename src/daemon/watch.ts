/**
 * File watches (chokidar): a changed password file means log in with the new password now; an
 * include changed or removed by someone else is put back; a changed config file is re-read.
 *
 * The parent directories are watched, not the files: editors and our own writer replace files
 * by rename, which a watch on the old inode would miss. Events are debounced per file, so a
 * truncate-then-write is acted on once, with the final content.
 */
import { dirname } from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';

/** Quiet time after the last event before acting on a file. */
export const DEBOUNCE_MS = 100;

export interface WatchTargets {
  /** Password file -> session names using it. */
  passwordFiles: Map<string, string[]>;
  /** Include path -> session name. */
  includes: Map<string, string>;
  configFile: string | undefined;
}

export interface WatchHandlers {
  passwordChanged(session: string): void;
  includeChanged(session: string): void;
  configChanged(): void;
}

/** A running watch; `close()` stops it and drops pending debounced events. */
export interface Watch {
  close(): Promise<void>;
}

/** Starts watching; resolves once the initial scan is done. */
export async function startWatching(targets: WatchTargets, handlers: WatchHandlers): Promise<Watch> {
  const files = new Set([...targets.passwordFiles.keys(), ...targets.includes.keys(), ...(targets.configFile ? [targets.configFile] : [])]);
  const dirs = [...new Set([...files].map((f) => dirname(f)))];
  const watcher: FSWatcher = chokidar.watch(dirs, { ignoreInitial: true, depth: 0, ignored: (path: string) => !files.has(path) && !dirs.includes(path) });
  const pending = new Map<string, NodeJS.Timeout>();
  const act = (path: string) => {
    pending.delete(path);
    for (const s of targets.passwordFiles.get(path) ?? []) handlers.passwordChanged(s);
    const session = targets.includes.get(path);
    if (session) handlers.includeChanged(session);
    if (path === targets.configFile) handlers.configChanged();
  };
  const onEvent = (path: string) => {
    if (!files.has(path)) return;
    clearTimeout(pending.get(path));
    pending.set(path, setTimeout(act, DEBOUNCE_MS, path));
  };
  watcher.on('add', onEvent).on('change', onEvent).on('unlink', onEvent);
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return {
    async close() {
      for (const t of pending.values()) clearTimeout(t);
      pending.clear();
      await watcher.close();
    },
  };
}
