/**
 * jwt (HS256, signed here) against the test resource server in CouchDB mode (it verifies by
 * `kid` with jose and answers `GET /_session` as CouchDB's jwt handler does; its 401s carry no
 * challenge, so the daemon decides by the probe). Killing every token is a secret rotation on
 * both sides under the same kid: the backend's key and the key file change together.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startResourceServer, type LocalKey } from '../resource-server.js';
import type { KindHarness } from './harness.js';

const hmac = (secret: string): LocalKey => ({ alg: 'HS256', key: new TextEncoder().encode(secret) });

export const jwtHarness: KindHarness = {
  kind: 'jwt',
  title: 'jwt (HS256) on a jose resource server answering as CouchDB',
  variable: 'auth_authorization',
  // The service account is no server admin: CouchDB's 401 "You are not a server admin".
  forbiddenPath: '/_config',
  async start(dir) {
    let secret = `contract-hs256-secret-${process.pid}-0`;
    const rs = await startResourceServer({ mode: 'jwt', keys: { k1: hmac(secret) } });
    const keyFile = join(dir, 'jwt.key');
    await writeFile(keyFile, `${secret}\n`, { mode: 0o600 });
    const secrets = [secret];
    let rotation = 0;
    return {
      url: rs.url,
      session: { kind: 'jwt', algorithm: 'HS256', key_file: keyFile, kid: 'k1', sub: 'svc-contract', roles: ['reader'] },
      env: {},
      secrets,
      okPath: '/db/contract',
      async invalidate() {
        secret = `contract-hs256-secret-${process.pid}-${++rotation}`;
        secrets.push(secret);
        rs.setKeys({ k1: hmac(secret) });
        await writeFile(keyFile, `${secret}\n`, { mode: 0o600 });
      },
      // Minted locally: nothing to count at the backend (the contract counts generations instead).
      issued: async () => undefined,
      stop: () => rs.stop(),
    };
  },
};
