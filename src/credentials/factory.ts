/**
 * Picks the credential kind of a session from its `kind` key. Adding a kind: a file beside this
 * one, its schema in config/kinds.ts, and one line here.
 */
import type { AnySessionConfig } from '../config/schema.js';
import { basicAuth } from './basic.js';
import { cloudantIam } from './cloudant-iam.js';
import { couchdbSession } from './couchdb-session.js';
import type { CredentialKind } from './kind.js';
import { jwtBearer } from './jwt.js';
import { oauth2ClientCredentials } from './oauth2-client-credentials.js';

/** The credential kind bound to `session`'s settings. */
export function credentialKind(session: AnySessionConfig): CredentialKind {
  switch (session.kind) {
    case 'couchdb-session':
      return couchdbSession(session);
    case 'oauth2-client-credentials':
      return oauth2ClientCredentials(session);
    case 'basic':
      return basicAuth(session);
    case 'jwt':
      return jwtBearer(session);
    case 'cloudant-iam':
      return cloudantIam(session);
  }
}
