/**
 * Getting a new credential: renew the current one when the kind can do it cheaply (CouchDB
 * re-issues its cookie on `GET /_session`, an HMAC check), else obtain one with the long-term
 * secret (a login, a token request, a signature). Both end in a whitelisted value and its expiry.
 */
import type { Credential, CredentialKind } from '../credentials/kind.js';
import type { Logger } from '../log.js';

/** How the credential in the include was obtained. */
export type ObtainedBy = 'login' | 'renewal';

/** A credential ready to render, with how it was obtained. */
export interface Obtained {
  credential: Credential;
  by: ObtainedBy;
  /** The backend said the credential being replaced is dead: nginx must get the new one without delay. */
  replacesDead?: boolean;
}

/**
 * Renews `current` when given and the kind allows it, else obtains a new credential. Returns
 * undefined when the backend confirmed the current credential and gave it back unchanged
 * (nothing to write). Every value returned has passed `kind.assertSafe`.
 */
export async function obtain(kind: CredentialKind, current: string | undefined, log: Logger): Promise<Obtained | undefined> {
  if (current !== undefined && kind.renew) {
    const renewal = await kind.renew(current);
    if (renewal.kind === 'renewed') return checked(kind, { credential: renewal.credential, by: 'renewal' });
    if (renewal.kind === 'unchanged') return undefined;
    log.info({ reason: renewal.reason }, 'renewal declined; logging in');
    if (renewal.dead) return checked(kind, { credential: await kind.obtain(), by: 'login', replacesDead: true });
  }
  return checked(kind, { credential: await kind.obtain(), by: 'login' });
}

/** The whitelist applied whatever the kind did, before anything is rendered. */
function checked(kind: CredentialKind, obtained: Obtained): Obtained {
  kind.assertSafe(obtained.credential.value);
  return obtained;
}
