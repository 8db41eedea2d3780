/**
 * oauth2-client-credentials against a real authorization server (oidc-provider, test/helpers/
 * oidc.ts) and the test resource server verifying its tokens with jose against its JWKS
 * (test/helpers/resource-server.ts). Killing every token is a signing-key rotation at the
 * authorization server; the resource server answers RFC 6750 `invalid_token` to the old ones.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { BASIC_CLIENT, CLIENT_SECRET, startAuthorizationServer } from '../oidc.js';
import { ADMIN_SCOPE, startResourceServer } from '../resource-server.js';
import type { KindHarness } from './harness.js';

export const oauth2Harness: KindHarness = {
  kind: 'oauth2-client-credentials',
  title: 'oauth2-client-credentials on oidc-provider and a jose resource server',
  variable: 'auth_authorization',
  // A path that needs a scope the client is never granted: 401 insufficient_scope.
  forbiddenPath: `/admin/${ADMIN_SCOPE}`,
  async start(dir) {
    const as = await startAuthorizationServer({ accessTokenTtl: 300 });
    const rs = await startResourceServer({ mode: 'oauth2', issuer: as.issuer, jwksUri: as.jwksUri, audience: as.resource, cacheMaxAgeMs: 200 });
    let own = 0;
    const form = (v: string) => new URLSearchParams({ v }).toString().slice(2);
    const ownToken = async (): Promise<string> => {
      const res = await fetch(as.tokenUrl, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${form(BASIC_CLIENT)}:${form(CLIENT_SECRET)}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
      if (res.status !== 200) throw new Error(`the harness's own token request answered ${res.status}`);
      own++;
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const secretFile = join(dir, 'client.secret');
    await writeFile(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
    return {
      url: rs.url,
      session: { kind: 'oauth2-client-credentials', token_url: as.tokenUrl, client_id: BASIC_CLIENT, client_secret_file: secretFile },
      env: {},
      secrets: [CLIENT_SECRET],
      okPath: '/api/contract',
      async invalidate() {
        // A token of the harness's own (not counted as issued to the session), to see when the
        // resource server has dropped the old key: it refetches the JWKS once its cache ages out.
        const witness = await ownToken();
        await as.rotateKeys();
        const deadline = Date.now() + 5000;
        while ((await fetch(`${rs.url}/api/witness`, { headers: { authorization: `Bearer ${witness}` } })).status !== 401) {
          if (Date.now() > deadline) throw new Error('the resource server still accepts tokens signed with the old key');
          await delay(50);
        }
      },
      issued: async () => as.tokensIssued() - own,
      async stop() {
        await Promise.allSettled([rs.stop(), as.stop()]);
      },
    };
  },
};
