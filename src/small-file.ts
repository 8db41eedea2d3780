/**
 * Reading the small files the tool depends on (include, state, password, config) without
 * trusting what sits at the path. A FIFO would block an open or a read forever, a device such as
 * /dev/zero never ends, a directory or socket is no file at all: only a regular file is read,
 * opened with O_NONBLOCK (so even a FIFO's open returns at once), its type checked on the open
 * descriptor (no race between check and read), and never more than `maxBytes` read.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { hasCode } from './errors.js';

/** A path holds something other than a small regular file. `reason` completes "<path> …". */
export class UnsafeFileError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path} ${reason}`, options);
    this.name = 'UnsafeFileError';
  }
}

export interface SmallFileOptions {
  /** Largest size read; a bigger file is refused. */
  maxBytes: number;
  /** Open a symbolic link's target (true), or refuse a link at the path itself (false). */
  followLinks: boolean;
}

/** What is at a path, in words, from its stats. */
export function describeType(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function flags(options: SmallFileOptions): number {
  return constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (options.followLinks ? 0 : constants.O_NOFOLLOW);
}

/** The refusal for an open that failed, or undefined for an absent file (ENOENT); rethrows other errors. */
function openProblem(path: string, error: unknown, options: SmallFileOptions): UnsafeFileError | undefined {
  if (hasCode(error, 'ENOENT')) return undefined;
  // O_NOFOLLOW makes open fail with ELOOP when the path itself is a symbolic link.
  if (!options.followLinks && hasCode(error, 'ELOOP')) return new UnsafeFileError(path, 'is a symbolic link, which is not followed (its target would be read and replaced)', { cause: error });
  // A unix socket (or a device with no driver) cannot be opened at all: say what it is.
  if (hasCode(error, 'ENXIO', 'ENODEV', 'EOPNOTSUPP')) {
    let what = 'not a regular file';
    try {
      what = `${describeType(options.followLinks ? statSync(path) : lstatSync(path))}, not a regular file`;
    } catch {
      /* keep the generic words */
    }
    return new UnsafeFileError(path, `is ${what}`, { cause: error });
  }
  throw error;
}

function shapeProblem(path: string, stats: Stats, options: SmallFileOptions): UnsafeFileError | undefined {
  if (!stats.isFile()) return new UnsafeFileError(path, `is ${describeType(stats)}, not a regular file`);
  if (stats.size > options.maxBytes) return new UnsafeFileError(path, `is ${stats.size} bytes, over the ${options.maxBytes}-byte limit for this file`);
  return undefined;
}

/**
 * The bytes of the regular file at `path`, or undefined when nothing is there. Throws
 * UnsafeFileError for anything else at the path (or a file over `maxBytes`), and the system
 * error for other failures (EACCES, EIO).
 */
export async function readSmallFile(path: string, options: SmallFileOptions): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, flags(options));
  } catch (error) {
    const problem = openProblem(path, error, options);
    if (problem) throw problem;
    return undefined;
  }
  try {
    const problem = shapeProblem(path, await handle.stat(), options);
    if (problem) throw problem;
    // One byte more than allowed tells a file that grew since the stat.
    const buffer = Buffer.alloc(options.maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > options.maxBytes) throw new UnsafeFileError(path, `grew over the ${options.maxBytes}-byte limit for this file while it was read`);
    }
    return Buffer.from(buffer.subarray(0, length));
  } finally {
    await handle.close();
  }
}

/** readSmallFile, synchronously (for the configuration, which is loaded synchronously). */
export function readSmallFileSync(path: string, options: SmallFileOptions): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, flags(options));
  } catch (error) {
    const problem = openProblem(path, error, options);
    if (problem) throw problem;
    return undefined;
  }
  try {
    const problem = shapeProblem(path, fstatSync(fd), options);
    if (problem) throw problem;
    const buffer = Buffer.alloc(options.maxBytes + 1);
    let length = 0;
    for (;;) {
      const bytesRead = readSync(fd, buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > options.maxBytes) throw new UnsafeFileError(path, `grew over the ${options.maxBytes}-byte limit for this file while it was read`);
    }
    return Buffer.from(buffer.subarray(0, length));
  } finally {
    closeSync(fd);
  }
}
