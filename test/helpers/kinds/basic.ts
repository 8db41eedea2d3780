/**
 * basic on a real CouchDB-compatible server (pouchdb-server), as its server admin, probed at
 * `/_session` (pouchdb-server answers 401 to a Basic password it no longer has). Killing the
 * credential is a password change: the backend's, then the password file's, as an operator
 * rotating a password does.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCouch } from '../couch.js';
import type { KindHarness } from './harness.js';

export const basicHarness: KindHarness = {
  kind: 'basic',
  title: 'basic on pouchdb-server',
  variable: 'auth_authorization',
  async start(dir) {
    const couch = await startCouch();
    const passwordFile = join(dir, 'basic.password');
    await writeFile(passwordFile, `${couch.admin.password}\n`, { mode: 0o600 });
    const secrets = [couch.admin.password];
    let rotation = 0;
    return {
      url: couch.url,
      session: { kind: 'basic', username: couch.admin.name, password_file: passwordFile, probe_path: '/_session' },
      env: {},
      secrets,
      okPath: '/_config',
      async invalidate() {
        const password = `rotated-basic-${++rotation}-${process.pid}`;
        secrets.push(password);
        await couch.setAdminPassword(password);
        await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
      },
      issued: async () => undefined,
      stop: () => couch.stop(),
    };
  },
};
