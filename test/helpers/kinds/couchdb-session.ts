/**
 * couchdb-session on a real CouchDB-compatible server (pouchdb-server), as its server admin:
 * `/_config` answers 401 without a live session. (The 401 about the request, an ordinary user
 * on an admin path, is unauthorized-path.test.ts's; pouchdb-server gives an ordinary user no
 * other path that tells a dead cookie by a 401.)
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCouch } from '../couch.js';
import type { KindHarness } from './harness.js';

export const couchdbSessionHarness: KindHarness = {
  kind: 'couchdb-session',
  title: 'couchdb-session on pouchdb-server',
  variable: 'auth_cookie',
  renews: true,
  async start(dir) {
    const couch = await startCouch();
    const passwordFile = join(dir, 'couch.password');
    await writeFile(passwordFile, `${couch.admin.password}\n`, { mode: 0o600 });
    return {
      url: couch.url,
      session: { username: couch.admin.name, password_file: passwordFile },
      env: {},
      secrets: [couch.admin.password],
      okPath: '/_config',
      invalidate: () => couch.rotateSecret(),
      async issued() {
        await couch.settle();
        return couch.logins();
      },
      stop: () => couch.stop(),
    };
  },
};
