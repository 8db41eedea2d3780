/**
 * The session schema of each credential kind, and the discriminated union over them (`kind`
 * chooses; absent means `couchdb-session`, so configurations written before kinds existed keep
 * working). Each kind's keys are strict: a key of another kind is an error that names that kind
 * (see validate.ts). Secrets (password, client secret, signing key, API key) come only from a file, an
 * environment variable or a systemd credential, never from a literal.
 */
import * as z from 'zod';
import { isLoopbackHost } from '../daemon/listen.js';
import { commonSessionShape, cookieName, httpUrl, lifetimeSeconds, nginxVariable, oneSecretSource, probePath, secretCredential, secretEnv, secretFile } from './fields.js';

const { name, include, group, ca_file, timeout, retries, schedule, schedule_only, verify_url } = commonSessionShape;
/** Keys after the kind-specific ones, in the order problems are listed. */
const tail = { group, ca_file, timeout, retries, schedule, schedule_only, verify_url };
const backend = httpUrl('use the kind\'s secret source keys');

/** `couchdb-session`: `POST /_session` with a username and a password; the session cookie. */
export const couchSessionSchema = z
  .strictObject({
    name,
    /** Backend base URL; `_session` is resolved against it. */
    url: httpUrl('use username and a password source'),
    /** The account that logs in. */
    username: z.string().min(1, { message: 'must not be empty' }),
    password_file: secretFile,
    password_env: secretEnv,
    password_credential: secretCredential,
    include,
    /** The nginx variable set in the include; `<variable>_generation` is set beside it. */
    variable: nginxVariable.default('auth_cookie'),
    /** The session cookie's name (`SyncGatewaySession` for Couchbase Sync Gateway). */
    cookie_name: cookieName.default('AuthSession'),
    /** How the login sends name and password: `form` (CouchDB) or `json` (CouchDB, Sync Gateway). */
    login_format: z.enum(['form', 'json']).default('form'),
    /**
     * Where the session is made and asked about, when it is not `_session` under `url`:
     * Couchbase Sync Gateway's is per database, `/{db}/_session`.
     */
    session_path: probePath.optional(),
    /** Session lifetime in seconds, used when the cookie carries no Max-Age or Expires. */
    lifetime: lifetimeSeconds.default(600),
    ...tail,
    kind: z.literal('couchdb-session'),
  })
  .superRefine(oneSecretSource('password', 'password'));

/** The variable Authorization-header kinds set by default. */
export const AUTHORIZATION_VARIABLE = 'auth_authorization';

/** `oauth2-client-credentials`: an RFC 6749 client-credentials grant; a Bearer access token. */
export const oauth2SessionSchema = z
  .strictObject({
    name,
    kind: z.literal('oauth2-client-credentials'),
    /** The backend (resource server) base URL the fallback replays to. */
    url: backend,
    /** The authorization server's token endpoint. */
    token_url: httpUrl('use client_id and a client secret source'),
    /** The client's identifier at the authorization server. */
    client_id: z.string().min(1, { message: 'must not be empty' }),
    client_secret_file: secretFile,
    client_secret_env: secretEnv,
    client_secret_credential: secretCredential,
    /** How the client authenticates at the token endpoint (RFC 6749 2.3.1): Basic header, or form fields. */
    client_auth: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
    /** Space-separated scopes asked for; none when absent. */
    scope: z.string().min(1).optional(),
    /** `audience` form parameter (Auth0, Okta and others name the API this way). */
    audience: z.string().min(1).optional(),
    /** RFC 8707 resource indicator: the absolute URI of the API the token is for. */
    resource: z.url({ error: 'must be an absolute URI (RFC 8707)' }).optional(),
    /** Token lifetime in seconds when the token response carries no `expires_in`. */
    lifetime: lifetimeSeconds.default(300),
    /** A backend path any valid token may GET, asked on a 401 that does not say `invalid_token`. */
    probe_path: probePath.optional(),
    include,
    /** The nginx variable set in the include (the whole Authorization value); `<variable>_generation` beside it. */
    variable: nginxVariable.default(AUTHORIZATION_VARIABLE),
    ...tail,
  })
  .superRefine(oneSecretSource('client_secret', 'client secret'));

/** `basic`: a static username and password sent as `Authorization: Basic`; nothing expires. */
export const basicSessionSchema = z
  .strictObject({
    name,
    kind: z.literal('basic'),
    url: httpUrl('use username and a password source'),
    /** The account. */
    username: z.string().min(1, { message: 'must not be empty' }).refine((u) => !u.includes(':'), { message: 'must not contain ":" (Basic cannot carry it in a username)' }),
    password_file: secretFile,
    password_env: secretEnv,
    password_credential: secretCredential,
    /** Seconds before the password source is read again (a rotated password is picked up). */
    lifetime: lifetimeSeconds.default(3600),
    /** A backend path the account may GET, asked on a 401 (`/_session` on CouchDB). */
    probe_path: probePath.optional(),
    include,
    variable: nginxVariable.default(AUTHORIZATION_VARIABLE),
    ...tail,
  })
  .superRefine(oneSecretSource('password', 'password'));

/** RFC 7519 4.1's registered claims: the jwt kind sets or may set each of them itself. */
const REGISTERED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti']);

/** `jwt`: a JSON Web Token minted locally and signed with a key the backend trusts; no request at all. */
export const jwtSessionSchema = z
  .strictObject({
    name,
    kind: z.literal('jwt'),
    url: backend,
    /** The signing algorithm: HS256 with a shared secret, RS256 or ES256 with a PKCS#8 PEM private key. */
    algorithm: z.enum(['HS256', 'RS256', 'ES256']).default('HS256'),
    /** The signing key: the HS256 secret, or the PEM private key. */
    key_file: secretFile,
    key_env: secretEnv,
    key_credential: secretCredential,
    /** `kid` header: which of the backend's keys verifies the token (CouchDB `[jwt_keys]` `hmac:<kid>`). */
    kid: z.string().regex(/^[A-Za-z0-9._~-]+$/, { message: 'must be letters, digits, ".", "_", "~" or "-"' }).optional(),
    /** `sub` claim: the user the backend sees. */
    sub: z.string().min(1, { message: 'must not be empty' }),
    /** Roles put at `roles_claim`. */
    roles: z.array(z.string().min(1)).default([]),
    /** Dotted path of the roles claim; CouchDB reads `_couchdb.roles`. */
    roles_claim: z
      .string()
      .regex(/^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/, { message: 'must be a dotted claim path like _couchdb.roles' })
      // The kind sets these itself (RFC 7519 4.1): roles there would be overwritten, or change what the token means.
      .refine((path) => !REGISTERED_CLAIMS.has(path.split('.')[0]!), { message: `must not start at a registered claim (${[...REGISTERED_CLAIMS].join(', ')}): the token's own claims live there` })
      .default('_couchdb.roles'),
    /** Optional `iss` and `aud` claims. */
    issuer: z.string().min(1).optional(),
    audience: z.string().min(1).optional(),
    /** Seconds from `iat` to `exp`. */
    lifetime: lifetimeSeconds.default(300),
    /**
     * A backend path asked on a 401 that does not say `invalid_token`: CouchDB's `/_session`
     * answers `userCtx.name` for a token its jwt handler accepts, 401 for one it refuses.
     */
    probe_path: probePath.default('/_session'),
    include,
    variable: nginxVariable.default(AUTHORIZATION_VARIABLE),
    ...tail,
  })
  .superRefine(oneSecretSource('key', 'signing key'));

/** IBM Cloud IAM's token endpoint. */
export const IBM_IAM_TOKEN_URL = 'https://iam.cloud.ibm.com/identity/token';

/**
 * The IAM token endpoint: https, or plain http on a loopback host only. The long-term API key
 * travels in the request body, so an http endpoint elsewhere would hand it to anyone on the path;
 * a loopback endpoint never leaves the machine (a local token proxy, a test's scripted IAM).
 */
const iamUrl = httpUrl('the API key goes in api_key_file, api_key_env or api_key_credential').refine(
  (u) => !URL.canParse(u) || new URL(u).protocol === 'https:' || isLoopbackHost(new URL(u).hostname.replace(/^\[|\]$/g, '')),
  { message: 'must be https:// (the API key is sent to it); plain http:// is accepted only on a loopback host (127.0.0.1, ::1, localhost)' },
);

/**
 * `cloudant-iam`: IBM Cloudant with IBM Cloud IAM. The API key buys an IAM access token
 * (`grant_type=urn:ibm:params:oauth:grant-type:apikey`, about an hour); with `token_use: bearer`
 * nginx sends it as `Authorization: Bearer`, with `token_use: cookie` it is traded once more at
 * the account's `POST /_iam_session` for an `IAMSession` cookie, which nginx sends instead.
 */
export const cloudantIamSessionSchema = z
  .strictObject({
    name,
    kind: z.literal('cloudant-iam'),
    /** The Cloudant account URL (`https://<account>.cloudant.com`); `_iam_session` and the probe go under it. */
    url: httpUrl('use a key source: api_key_file, api_key_env or api_key_credential'),
    /** The IAM API key (service credentials' `apikey`): from a file, an environment variable or a systemd credential. */
    api_key_file: secretFile,
    api_key_env: secretEnv,
    api_key_credential: secretCredential,
    /** IAM's token endpoint; another only for a private IAM or a local token proxy (see iamUrl). */
    iam_url: iamUrl.default(IBM_IAM_TOKEN_URL),
    /** How Cloudant gets the credential: the access token as a Bearer header, or the IAMSession cookie made from it. */
    token_use: z.enum(['bearer', 'cookie']).default('bearer'),
    /** Seconds the credential is believed to live when IAM says no `expires_in` and the cookie no Max-Age or Expires. */
    lifetime: lifetimeSeconds.default(3600),
    /**
     * A path any valid credential may GET, asked on a 401: Cloudant answers `GET /_session` with
     * the caller's `userCtx` for a live token or cookie and 401 for an expired one, and its 401s
     * carry no RFC 6750 challenge, so the probe is how a dead credential is told from a refusal.
     */
    probe_path: probePath.default('/_session'),
    include,
    /**
     * The nginx variable set in the include. Default: `auth_authorization` with `token_use:
     * bearer`, `auth_cookie` with `token_use: cookie`. Zod cannot default one key from another,
     * so the empty string stands for "not set" (no variable name is empty: nginxVariable refuses
     * it when written) and the overwrite below puts the default in.
     */
    variable: nginxVariable.default(''),
    ...tail,
  })
  .superRefine(oneSecretSource('api_key', 'API key'))
  .overwrite((s) => (s.variable === '' ? { ...s, variable: s.token_use === 'cookie' ? 'auth_cookie' : AUTHORIZATION_VARIABLE } : s));

/** Every kind, by its `kind` value. Adding a kind: its schema here and its file in src/credentials/. */
export const KIND_SCHEMAS = {
  'couchdb-session': couchSessionSchema,
  'oauth2-client-credentials': oauth2SessionSchema,
  basic: basicSessionSchema,
  jwt: jwtSessionSchema,
  'cloudant-iam': cloudantIamSessionSchema,
} as const;

export type KindName = keyof typeof KIND_SCHEMAS;
export const KIND_NAMES = Object.keys(KIND_SCHEMAS) as KindName[];
/** The kind of a session that names none. */
export const DEFAULT_KIND: KindName = 'couchdb-session';

/** A session of any kind; `kind` is filled in with DEFAULT_KIND when absent. */
export const anySessionSchema = z.preprocess(
  (raw) => (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && (raw as { kind?: unknown }).kind === undefined ? { ...raw, kind: DEFAULT_KIND } : raw),
  z.discriminatedUnion('kind', [couchSessionSchema, oauth2SessionSchema, basicSessionSchema, jwtSessionSchema, cloudantIamSessionSchema], {
    error: (issue) => (issue.code === 'invalid_union' ? `must be one of ${KIND_NAMES.join(', ')}` : undefined),
  }),
);

/** Which kinds have `key`, for naming the kind a misplaced key belongs to. */
export function kindsWithKey(key: string): KindName[] {
  return KIND_NAMES.filter((k) => key in KIND_SCHEMAS[k].shape);
}
