/**
 * `nginx-snippet`: prints the nginx configuration for each session, filled from the config:
 * the upstream (http { } part), the locations (server { } part) and the placeholder include.
 * With --placeholder it also creates a missing include and the fallback key, so nginx starts
 * before the first login.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { ExitCode, UsageError, type ExitCodeValue } from '../errors.js';
import { ensureFallbackKey, fallbackKeyPath } from '../nginx/fallback-key.js';
import { renderSnippet, SNIPPET_PARTS, type SnippetPart } from '../nginx/snippet.js';
import { INCLUDE_MODE } from '../refresh/pipeline.js';
import { resolveGroup } from '../render/group.js';
import { writeAtomic } from '../render/write.js';
import { VERSION } from '../version.js';
import { loadFromOptions, selectSessions, stdOutput, type GlobalOptions } from './context.js';

export interface NginxSnippetOptions extends GlobalOptions {
  session?: string;
  part?: string;
  placeholder?: boolean;
  /** commander's --no-fallback sets fallback: false. */
  fallback?: boolean;
}

export async function nginxSnippet(options: NginxSnippetOptions): Promise<ExitCodeValue> {
  const { config } = loadFromOptions(options);
  if (options.part !== undefined && !SNIPPET_PARTS.includes(options.part as SnippetPart)) {
    throw new UsageError(`--part must be one of ${SNIPPET_PARTS.join(', ')} (got "${options.part}")`);
  }
  const parts = options.part ? [options.part as SnippetPart] : SNIPPET_PARTS;
  for (const session of selectSessions(config, options.session)) {
    for (const part of parts) {
      if (parts.length > 1) stdOutput.line(`# ===== session "${session.name}": ${part === 'http' ? 'inside http { }' : part === 'server' ? 'inside server { }' : `placeholder for ${session.include}`} =====`);
      stdOutput.line(renderSnippet(part, config, session, VERSION, { withFallback: options.fallback !== false }));
    }
    if (options.placeholder) {
      const exists = await access(session.include, constants.F_OK).then(() => true, () => false);
      if (exists) stdOutput.warn(`${session.name}: ${session.include} exists; left as it is`);
      else {
        await writeAtomic(session.include, renderSnippet('placeholder', config, session, VERSION), { mode: INCLUDE_MODE, gid: await resolveGroup(session.group) });
        stdOutput.warn(`${session.name}: wrote the placeholder ${session.include}`);
      }
    }
  }
  if (options.placeholder && options.fallback !== false) {
    // The snippet includes the fallback key: it must exist before nginx reads the snippet.
    const path = fallbackKeyPath(config);
    const { created } = await ensureFallbackKey(path);
    stdOutput.warn(created ? `wrote the fallback key ${path} (mode 0640)` : `${path} exists; left as it is`);
  }
  return ExitCode.OK;
}
