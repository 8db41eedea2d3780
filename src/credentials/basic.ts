/**
 * `basic`: a static username and password sent as `Authorization: Basic`. Nothing is asked of
 * the backend: the credential is the password, so the include holds it (`check` warns), and it
 * is rebuilt every `lifetime` seconds so a rotated password source is picked up.
 */
import type { AnySessionConfig } from '../config/schema.js';
import { readPassword } from '../session/password.js';
import { assertSafeAuthorization, expiryIn } from './authorization.js';
import type { CredentialKind } from './kind.js';
import { tokenProbe } from './token-probe.js';

type BasicSession = Extract<AnySessionConfig, { kind: 'basic' }>;

/** The basic kind for `session`. */
export function basicAuth(session: BasicSession, now: () => Date = () => new Date()): CredentialKind {
  const what = 'the Basic credential';
  return {
    kind: 'basic',
    header: 'authorization',
    label: what,
    async obtain() {
      const password = await readPassword(session);
      const value = `Basic ${Buffer.from(`${session.username}:${password}`, 'utf8').toString('base64')}`;
      assertSafeAuthorization(value, 'Basic', what);
      return { value, expiry: expiryIn(session.lifetime, now(), 'lifetime') };
    },
    probe: tokenProbe(session),
    challenge: () => 'unknown',
    assertSafe: (value) => assertSafeAuthorization(value, 'Basic', what),
    describe: () => ({ kind: 'basic', url: session.url, username: session.username }),
  };
}
