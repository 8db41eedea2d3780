/**
 * The file work of one recovery, in-process and without the network: read the session (the
 * 401's question), take the session's lock and read the session again under it, as the pass
 * does before it logs in. The network parts of a recovery are measured by figure 2 itself;
 * this part is too small to see through them on a shared machine, so it is timed alone.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnySessionConfig } from '../../src/config/schema.js';
import { CurrentReader } from '../../src/daemon/current.js';
import { withSessionLock } from '../../src/lock.js';
import { renderCredentialInclude } from '../../src/render/include.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { clockMs } from './client.js';
import { percentile } from './stats.js';

/** p50 and p99 in ms of `rounds` recoveries' file work, after a warm-up. */
export async function recoveryFileWork(session: AnySessionConfig, rounds = 2000): Promise<{ p50: number; p99: number }> {
  const tmp = await tempDir('sr-bench-files-');
  try {
    const stateDir = join(tmp.path, 'state');
    await mkdir(stateDir);
    const s = { ...session, include: join(tmp.path, 'couch.conf') } as AnySessionConfig;
    const now = Date.now();
    await writeFile(s.include, renderCredentialInclude({ session: s.name, variable: s.variable, header: 'AuthSession=YWRtaW46Njc0RjAwMDA6c2lnbmF0dXJl', generation: 3, issued: new Date(now), expires: new Date(now + 600_000) }), { mode: 0o640 });
    await writeFile(join(stateDir, `${s.name}.json`), JSON.stringify({ generation: 3, issued: new Date(now).toISOString(), expires: new Date(now + 600_000).toISOString() }));
    const reader = new CurrentReader(stateDir, s);
    const once = async () => {
      await reader.read();
      await withSessionLock(stateDir, s.name, 20_000, () => reader.snapshot());
    };
    for (let i = 0; i < 300; i++) await once();
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t = clockMs();
      await once();
      times.push(clockMs() - t);
    }
    return { p50: percentile(times, 50), p99: percentile(times, 99) };
  } finally {
    await tmp.remove();
  }
}
