/**
 * The part of oidc-provider 8's API the tests use (test/helpers/oidc.ts). oidc-provider ships no
 * types of its own, and the DefinitelyTyped ones pull in Koa's; the few calls used are declared here.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export default class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    /** The request listener of the provider's Koa application. */
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }

  /** OAuth 2.0 error responses; thrown from configuration helpers, they become the endpoint's answer. */
  export const errors: {
    InvalidTarget: new (description?: string) => Error;
  };
}
