/** What the shipped daemon unit sets for Node, so the bench runs the daemon as deployed. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const UNIT = fileURLToPath(new URL('../../../systemd/session-refresherd.service', import.meta.url));

/** The unit's `Environment=NODE_OPTIONS=...` value (empty when it sets none). */
export function unitNodeOptions(unit = readFileSync(UNIT, 'utf8')): string {
  return /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1]?.trim() ?? '';
}
