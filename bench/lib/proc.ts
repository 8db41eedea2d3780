/** Reading processes from /proc (Linux): memory, CPU time, children. */
import { readFileSync, readdirSync } from 'node:fs';

/**
 * Resident set size in KiB (VmRSS, or with `field` one of its parts: RssAnon, the process's
 * own memory; RssFile, pages of mapped files such as the node binary, shared with every other
 * process mapping them), or undefined when the process is gone.
 */
export function rssKiB(pid: number, field: 'VmRSS' | 'RssAnon' | 'RssFile' = 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second for /proc/<pid>/stat times; 100 on every Linux this runs on. */
export const CLK_TCK = 100;

/** User + system CPU time in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Pids whose parent is `pid` (nginx's workers under its master). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Waits (bounded) until `pid` has exactly `count` children: old nginx workers have exited. */
export async function waitForChildren(pid: number, count: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = childPids(pid).length;
    if (n === count) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} still has ${n} children, expected ${count}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Samples `pid`'s RSS every `everyMs` until `stop()`; returns the peak in KiB. */
export function rssSampler(pid: number, everyMs = 20): { stop(): number } {
  let peak = rssKiB(pid) ?? 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssKiB(pid) ?? 0);
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, rssKiB(pid) ?? 0);
      return peak;
    },
  };
}
