/**
 * Files an include must never be. The include is replaced on every refresh (and removed when
 * nginx refuses a first one), so an include path that is, or resolves to, the password file,
 * the configuration, the state directory or another session's include would destroy it at the
 * first run. Pure: the caller passes how paths are resolved (realpath when loading).
 */
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { Config } from './schema.js';
import { sessionSecret } from '../credentials/secret.js';

/** Turns a path into the one it refers to (normalised; symbolic links resolved where they exist). */
export type ResolvePath = (path: string) => string;

/** A file the include must not be, and what it is, for the message. */
interface Protected {
  path: string;
  what: string;
}

/**
 * One problem line per include that is, or resolves to, a protected file: any session's
 * password_file or ca_file, the configuration file, nginx's main config or pid file, the state
 * directory or a state or lock file in it, or another session's include. `configPath` is the
 * file the configuration came from (undefined when from the environment alone);
 * `credentialsDirectory` is $CREDENTIALS_DIRECTORY, when set.
 */
export function includeConflicts(config: Config, configPath?: string, resolve: ResolvePath = resolvePath, credentialsDirectory?: string): string[] {
  const guarded: Protected[] = [];
  if (configPath) guarded.push({ path: configPath, what: 'the configuration file' });
  if (config.nginx.config) guarded.push({ path: config.nginx.config, what: "nginx's main configuration (nginx.config)" });
  guarded.push({ path: config.nginx.pid_file, what: "nginx's pid file (nginx.pid_file)" });
  guarded.push({ path: config.state_dir, what: 'the state directory (state_dir)' });
  for (const s of config.sessions) {
    const secret = sessionSecret(s);
    if (secret.file) guarded.push({ path: secret.file, what: `the ${secret.prefix}_file of session ${s.name}` });
    if (secret.credential && credentialsDirectory) guarded.push({ path: join(credentialsDirectory, secret.credential), what: `the ${secret.what} credential of session ${s.name}` });
    if (s.ca_file) guarded.push({ path: s.ca_file, what: `the ca_file of session ${s.name}` });
    guarded.push({ path: join(config.state_dir, `${s.name}.json`), what: `the state file of session ${s.name}` });
    guarded.push({ path: join(config.state_dir, `${s.name}.lock`), what: `the lock of session ${s.name}` });
  }
  const resolved = guarded.map((g) => ({ ...g, real: resolve(g.path) }));
  const problems: string[] = [];
  config.sessions.forEach((s, i) => {
    const where = `sessions[${i}] (${s.name}).include`;
    const real = resolve(s.include);
    const hit = resolved.find((g) => g.real === real);
    if (hit) {
      const how = hit.path === s.include ? s.include : `${s.include} resolves to ${real}, which`;
      problems.push(`${where}: ${how} is ${hit.what}; the include is replaced on every refresh and would destroy it: give the include its own file`);
      return;
    }
    if (resolve(dirname(s.include)) === resolve(config.state_dir) && /\.(json|lock)$/.test(s.include)) {
      problems.push(`${where}: ${s.include} is a state or lock file name in the state directory; give the include its own name`);
      return;
    }
    // Two sessions with the same include string are reported by the schema already.
    const other = config.sessions.findIndex((o, j) => j < i && o.include !== s.include && resolve(o.include) === real);
    if (other >= 0) problems.push(`${where}: ${s.include} resolves to ${real}, the include of sessions[${other}] (${config.sessions[other]!.name}); each session needs its own include`);
  });
  return problems;
}
