/**
 * The session as nginx should be using it now, read from the include and the state file.
 */
import { lstatSync } from 'node:fs';
import type { AnySessionConfig } from '../config/schema.js';
import { snapshot, type SessionSnapshot } from '../refresh/fresh.js';
import { parseIncludeCookie } from '../render/include.js';
import { statePath } from '../state/store.js';

/** The session as nginx should be using it now. */
export interface CurrentSession {
  generation: number;
  /** `AuthSession=...`, or undefined when the include holds no cookie. */
  cookie: string | undefined;
  /** Epoch ms, or undefined with no cookie. */
  expiresAt: number | undefined;
  /** A cookie is present, not expired, and the include on disk is the one last written. */
  valid: boolean;
  /** Epoch ms the cookie was obtained, and of the last login (the login floor counts from it). */
  obtainedAt: number | undefined;
  lastLoginAt: number | undefined;
  /** The include's bytes when they are the ones last written (to put back after a hand edit). */
  intactInclude: Buffer | undefined;
}

/** A session read from disk, apart from what depends on the clock. */
type OnDisk = Omit<CurrentSession, 'valid'> & { intact: boolean };

function describe(snap: SessionSnapshot, session: AnySessionConfig): OnDisk {
  const state = snap.state;
  const text = snap.include?.toString('utf8');
  const cookie = text === undefined ? undefined : parseIncludeCookie(text, session.variable);
  const intact = snap.includeSha256 !== undefined && snap.includeSha256 === state?.include_sha256;
  const time = (iso: string | undefined) => (iso === undefined ? undefined : Date.parse(iso));
  return {
    generation: state?.generation ?? 0,
    cookie,
    expiresAt: state?.expires ? Date.parse(state.expires) : undefined,
    obtainedAt: time(state?.obtained_at ?? state?.last_login),
    lastLoginAt: time(state?.last_login),
    intactInclude: intact ? snap.include : undefined,
    intact,
  };
}

function at(disk: OnDisk, now: number): CurrentSession {
  const { intact, ...rest } = disk;
  return { ...rest, valid: intact && disk.cookie !== undefined && disk.expiresAt !== undefined && disk.expiresAt > now };
}

/** Reads the include and state of `session` as they are on disk now. */
export async function readCurrent(stateDir: string, session: AnySessionConfig, now = Date.now()): Promise<CurrentSession> {
  return at(describe(await snapshot(stateDir, session), session), now);
}

/**
 * What identifies a file's bytes without reading them: every write of ours replaces the file by
 * a rename (a new inode), and any write in place changes its ctime. For the same key to come back
 * after a change, an inode would have to be reused at the same size within one tick of the
 * file system's clock, by three replacements in a row: our writes are a login apart.
 *
 * lstat is synchronous: two metadata calls on a local directory take microseconds, where the
 * thread pool's round trip takes a fraction of a millisecond on every 401.
 */
function identity(path: string): string {
  try {
    const s = lstatSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.mode}`;
  } catch (error) {
    return `unreadable:${(error as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

/**
 * readCurrent for the daemon: every 401 asks what the session is, a storm asks a thousand times
 * at once, and a pass reads the same two files again under the lock. Two lstat calls tell
 * whether the include and the state file are still the ones last read; only then are the bytes
 * read and hashed again. Whoever changed them (this daemon, refresh-now, a hand edit), the next
 * call sees it.
 */
export class CurrentReader {
  private last: { key: string; snap: SessionSnapshot; disk: OnDisk } | undefined;

  constructor(
    private readonly stateDir: string,
    private readonly session: AnySessionConfig,
  ) {}

  async read(now = Date.now()): Promise<CurrentSession> {
    return at((await this.load()).disk, now);
  }

  /** What `snapshot` would read now (the same bytes, shared: not to be modified). */
  async snapshot(): Promise<SessionSnapshot> {
    return (await this.load()).snap;
  }

  private async load(): Promise<{ snap: SessionSnapshot; disk: OnDisk }> {
    const key = `${identity(statePath(this.stateDir, this.session.name))}|${identity(this.session.include)}`;
    if (this.last?.key !== key) {
      const snap = await snapshot(this.stateDir, this.session);
      // Cache only what was read under the key checked before it: a change in between is seen next time.
      this.last = { key, snap, disk: describe(snap, this.session) };
    }
    return this.last;
  }
}
