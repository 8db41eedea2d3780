/**
 * couchdb-session for Couchbase Sync Gateway (JSON login, `SyncGatewaySession`, a per-database
 * session path) on a scripted Sync Gateway modelled on its documented REST responses
 * (test/helpers/scripted-sync-gateway.ts): none can run here.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SG_COOKIE, startScriptedSyncGateway } from '../scripted-sync-gateway.js';
import type { KindHarness } from './harness.js';

export const syncGatewayHarness: KindHarness = {
  kind: 'couchdb-session',
  title: 'couchdb-session on a scripted Sync Gateway',
  variable: 'auth_cookie',
  async start(dir) {
    const user = { username: 'sg-proxy', password: `sg-contract-${process.pid}` };
    const sg = await startScriptedSyncGateway(user);
    const passwordFile = join(dir, 'sg.password');
    await writeFile(passwordFile, `${user.password}\n`, { mode: 0o600 });
    return {
      url: sg.url,
      session: { username: user.username, password_file: passwordFile, login_format: 'json', cookie_name: SG_COOKIE, session_path: `/${sg.db}/_session` },
      env: {},
      secrets: [user.password],
      okPath: `/${sg.db}/contract`,
      invalidate: async () => sg.invalidateAll(),
      issued: async () => sg.logins(),
      stop: () => sg.stop(),
    };
  },
};
