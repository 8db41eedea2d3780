/**
 * A small tmpfs mounted over a test directory, to produce the real ENOSPC and EROFS a full or
 * read-only filesystem gives. Needs root and a kernel/container that allows mount(2).
 */
import { spawnSync } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { hasCode } from '../../src/errors.js';

export interface Tmpfs {
  dir: string;
  /** Writes a filler file until the filesystem answers ENOSPC, down to the last byte. */
  fill(): Promise<string>;
  /** `mount -o remount,ro`. */
  remountReadOnly(): void;
  unmount(): void;
}

function mount(args: string[]): { ok: boolean; reason: string } {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.error) return { ok: false, reason: `cannot run mount: ${r.error.message}` };
  return { ok: r.status === 0, reason: (r.stderr || r.stdout || `mount exited ${r.status}`).trim() };
}

/**
 * Mounts a tmpfs of `sizeKiB` over `dir` (hiding what was there). Returns a reason instead when
 * this process may not mount (not root, or no privilege in a container).
 */
export function mountTmpfs(dir: string, sizeKiB: number): Tmpfs | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'mounting a tmpfs needs root; run the suite as root to test a full or read-only include directory' };
  const mounted = mount(['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'tmpfs', dir]);
  if (!mounted.ok) return { skip: `mount -t tmpfs failed here (${mounted.reason}); no privilege to mount in this container` };
  let isMounted = true;
  return {
    dir,
    async fill() {
      const path = join(dir, 'filler');
      const handle = await open(path, 'w');
      try {
        for (const size of [65536, 4096, 512, 64, 8, 1]) {
          const chunk = Buffer.alloc(size, 0x2e);
          for (;;) {
            try {
              await handle.write(chunk);
            } catch (error) {
              if (hasCode(error, 'ENOSPC')) break;
              throw error;
            }
          }
        }
      } finally {
        await handle.close();
      }
      return path;
    },
    remountReadOnly() {
      const r = mount(['-o', 'remount,ro', dir]);
      if (!r.ok) throw new Error(`mount -o remount,ro ${dir} failed: ${r.reason}`);
    },
    unmount() {
      if (!isMounted) return;
      const r = spawnSync('umount', [dir], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`umount ${dir} failed: ${r.stderr}`);
      isMounted = false;
    },
  };
}
