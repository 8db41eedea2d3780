/**
 * The request function the login hands to got, undoing one Node.js change so that a failed
 * connection is retried and reported with its real cause on every supported Node.js.
 *
 * Since Node.js 24.20 and 26.7, when a connection fails before it is established (refused,
 * reset, a connect that times out), the request first emits its real 'error' (ECONNREFUSED,
 * ECONNRESET, got's timeout), and then the callback given to `request.end()` is called with
 * another error, usually ERR_SOCKET_CLOSED_BEFORE_CONNECTION. got 14 (and 15) rejects the whole
 * request with that second error: its retries are skipped and the cause is lost (got issue 2469).
 * Node.js 20 and 22 never call that callback once the request has failed. This restores that
 * contract on every version, so got sees exactly one error per attempt: the first.
 *
 * got 16 handles this itself but requires Node.js 22; drop this file when Node.js 20 support ends.
 */
import http, { type ClientRequest, type RequestOptions } from 'node:http';
import https from 'node:https';

type EndCallback = (error?: Error | null) => void;

/**
 * Makes `request.end(callback)` drop an error it reports after the request has emitted its own
 * 'error' (the callback is then never called, as on Node.js 20 and 22). An error that comes
 * first still reaches the callback. Returns the same request.
 */
export function dropLateEndError(request: ClientRequest): ClientRequest {
  let failed = false;
  // `once`, like got's own listener: a second 'error' event still behaves as it would without us.
  request.once('error', () => {
    failed = true;
  });
  const end = request.end;
  request.end = function (this: ClientRequest, ...args: unknown[]) {
    const at = args.findIndex((arg) => typeof arg === 'function');
    if (at >= 0) {
      const callback = args[at] as EndCallback;
      args[at] = (error?: Error | null) => {
        if (error && failed) return;
        callback(error);
      };
    }
    return (end as (...a: unknown[]) => ClientRequest).apply(this, args);
  } as ClientRequest['end'];
  return request;
}

/** got's `request` option: `http.request` or `https.request` by the URL's protocol, with {@link dropLateEndError}. */
export function requestWithoutLateEndError(url: URL, options: RequestOptions): ClientRequest {
  return dropLateEndError((url.protocol === 'https:' ? https : http).request(url, options));
}
