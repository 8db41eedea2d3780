#!/usr/bin/env node
/**
 * The executable. refresh-now runs every couple of minutes from cron or a timer, so starting
 * fast matters: where Node has it (22.1+), the compile cache keeps V8's compiled code of the
 * bundle between runs (in Node's default place, or $NODE_COMPILE_CACHE). It must be on before
 * the program's modules load, so the program is imported only after.
 */
import module from 'node:module';

try {
  (module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
} catch {
  // A cache that cannot be used only costs start-up time.
}
const { runCli } = await import('./program.js');
await runCli(process.argv);
