/**
 * got, loaded when the first request is made: the credential kinds are constructed by commands
 * that never send one (`status` describes them, `nginx-snippet` asks their header), and got
 * with its dependencies is the largest module they would otherwise load (about 50 ms of a
 * `status` run).
 */
import type { Got, RequestError } from 'got';

let loaded: typeof import('got') | undefined;

/** got's default instance, imported once. */
export async function httpClient(): Promise<Got> {
  loaded ??= await import('got');
  return loaded.default;
}

/** A got RequestError (any of its subclasses). False before got was loaded: nothing could have thrown one. */
export function isRequestError(error: unknown): error is RequestError {
  return loaded !== undefined && error instanceof loaded.RequestError;
}
