/**
 * Resolving the configured group of an include to a gid, from /etc/group.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, describeSystemError } from '../errors.js';

/** The gid for `group` (a number is returned as is); undefined when no group is configured. */
export async function resolveGroup(group: string | number | undefined, groupFile = '/etc/group'): Promise<number | undefined> {
  if (group === undefined || typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = await readFile(groupFile, 'utf8');
  } catch (error) {
    throw new ConfigError([`group "${group}": cannot read ${groupFile}: ${describeSystemError(error)}`], 'group');
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new ConfigError([`group: no group named "${group}" in ${groupFile}; create it or give a gid`], 'group');
}
