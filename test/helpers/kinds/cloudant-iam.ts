/**
 * cloudant-iam, in both `token_use` modes, on a scripted IAM token endpoint and Cloudant
 * account modelled on IBM's documented responses (test/helpers/scripted-iam.ts): neither can
 * run here.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startScriptedIam } from '../scripted-iam.js';
import type { KindHarness } from './harness.js';

function cloudantHarness(tokenUse: 'bearer' | 'cookie'): KindHarness {
  return {
    kind: 'cloudant-iam',
    title: `cloudant-iam (${tokenUse}) on a scripted IAM and Cloudant account`,
    variable: tokenUse === 'bearer' ? 'auth_authorization' : 'auth_cookie',
    async start(dir) {
      const apiKey = `contract-api-key-${process.pid}-${tokenUse}`;
      const iam = await startScriptedIam({ apiKey });
      const keyFile = join(dir, 'cloudant.apikey');
      await writeFile(keyFile, `${apiKey}\n`, { mode: 0o600 });
      return {
        url: iam.accountUrl,
        session: { kind: 'cloudant-iam', api_key_file: keyFile, iam_url: iam.tokenUrl, token_use: tokenUse },
        env: {},
        secrets: [apiKey],
        okPath: '/db/contract',
        invalidate: async () => iam.invalidateAll(),
        issued: async () => iam.tokensIssued(),
        stop: () => iam.stop(),
      };
    },
  };
}

export const cloudantBearerHarness = cloudantHarness('bearer');
export const cloudantCookieHarness = cloudantHarness('cookie');
