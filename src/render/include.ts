/**
 * Rendering the nginx include (pure). The output depends only on its inputs, so rendering the
 * same session twice gives the same bytes and the writer can skip an unchanged file.
 *
 *   # session-refresher: session "couch", generation 7. Rewritten on every refresh; do not edit.
 *   # issued 2026-11-22T10:00:00Z, expires 2026-11-22T10:10:00Z
 *   set $auth_cookie "AuthSession=...";
 *   set $auth_cookie_generation "7";
 */
import { assertSafeCookieValue } from '../session/cookie.js';

export interface RenderInput {
  session: string;
  /** nginx variable name without `$`. */
  variable: string;
  cookieName: string;
  /** The cookie value; refused (CookieRefusedError) unless it passes the whitelist. */
  value: string;
  /** Only grows; lets the fallback endpoint tell a stale cookie from the current one. */
  generation: number;
  issued: Date;
  expires: Date;
}

/** Renders the include text for a cookie. Throws CookieRefusedError for a value outside the whitelist. */
export function renderInclude(input: RenderInput): string {
  assertSafeCookieValue(input.value, input.cookieName);
  const { cookieName, value, ...rest } = input;
  return renderCredentialInclude({ ...rest, header: `${cookieName}=${value}` });
}

/** What the include of any credential kind holds. */
export interface CredentialRenderInput extends Omit<RenderInput, 'cookieName' | 'value'> {
  /**
   * The header's whole value (`AuthSession=…`, `Bearer …`). The caller has passed it through its
   * kind's whitelist; it is put between double quotes as it is.
   */
  header: string;
}

/** Renders the include text for a header value its kind has already whitelisted. */
export function renderCredentialInclude(input: CredentialRenderInput): string {
  if (!Number.isSafeInteger(input.generation) || input.generation < 0) throw new RangeError(`generation must be a non-negative integer, got ${input.generation}`);
  // A last guard whatever the kind checked: nothing nginx interprets inside a quoted string.
  if (!/^[\x21\x23\x25-\x5b\x5d-\x7a\x7c\x7e]+(?: [\x21\x23\x25-\x5b\x5d-\x7a\x7c\x7e]+)?$/.test(input.header)) throw new RangeError('the header value has characters an include must not hold');
  return [
    `# session-refresher: session "${input.session}", generation ${input.generation}. Rewritten on every refresh; do not edit.`,
    `# issued ${isoSeconds(input.issued)}, expires ${isoSeconds(input.expires)}`,
    `set $${input.variable} "${input.header}";`,
    `set $${input.variable}_generation "${input.generation}";`,
    '',
  ].join('\n');
}

/** Renders an include that sets the variable to an empty value (no valid session). */
export function renderEmptyInclude(session: string, variable: string, generation: number): string {
  return [
    `# session-refresher: session "${session}", generation ${generation}: no valid session. Rewritten on every refresh; do not edit.`,
    `set $${variable} "";`,
    `set $${variable}_generation "${generation}";`,
    '',
  ].join('\n');
}

/** The generation recorded in an include we wrote, or undefined when there is none. */
export function parseIncludeGeneration(text: string, variable: string): number | undefined {
  const match = new RegExp(`^set \\$${variable}_generation "(\\d+)";$`, 'm').exec(text);
  if (!match) return undefined;
  const n = Number(match[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The header value our include sets for `variable` (`Name=value` for a cookie, `Bearer …`), or
 * undefined when it sets none (an empty include, or a file we did not write).
 */
export function parseIncludeCookie(text: string, variable: string): string | undefined {
  const match = new RegExp(`^set \\$${variable} "([^"$\\\\]+)";$`, 'm').exec(text);
  return match?.[1];
}
