/**
 * File watches (chokidar): a changed password file means log in with the new password now; an
 * include changed or removed by someone else is put back; a changed config file is re-read.
 */
import chokidar, { type FSWatcher } from 'chokidar';

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

/** Starts watching; resolves once the initial scan is done. */
export async function startWatching(targets: WatchTargets, handlers: WatchHandlers): Promise<FSWatcher> {
  const paths = [...targets.passwordFiles.keys(), ...targets.includes.keys(), ...(targets.configFile ? [targets.configFile] : [])];
  const watcher = chokidar.watch(paths, { ignoreInitial: true, atomic: true, awaitWriteFinish: false });
  const onEvent = (path: string) => {
    for (const s of targets.passwordFiles.get(path) ?? []) handlers.passwordChanged(s);
    const session = targets.includes.get(path);
    if (session) handlers.includeChanged(session);
    if (path === targets.configFile) handlers.configChanged();
  };
  watcher.on('add', onEvent).on('change', onEvent).on('unlink', onEvent);
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return watcher;
}
