/**
 * Removing secrets from text a backend sent back (pure). A backend, or a proxy or WAF in front
 * of it, may echo the login request into its error reason: the form body (`password=...`,
 * form-encoded), the Basic header of the retry (base64 of `user:password`), or the password as
 * typed. Every spelling is replaced by "[redacted]" before the text reaches a message, a log
 * line, the state file, status, /healthz or a client.
 */

export const REDACTED = '[redacted]';

/** Base64 runs that encode `secret` wherever it sits in a longer base64 text (three alignments). */
function base64Cores(secret: Buffer): string[] {
  const cores: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), secret]).toString('base64');
    // Drop the group that mixes in the bytes before, and the last group if it mixes in bytes after.
    const core = encoded.slice(offset ? 4 : 0, Math.floor((offset + secret.length) / 3) * 4);
    if (core.length >= 4) cores.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return cores;
}

/**
 * Every spelling in which a login with `username` and `password` can come back: as typed,
 * form-encoded (`+` or `%20` for spaces, either hex case), JSON-escaped, and base64 (the Basic
 * header exactly, and the password inside any longer base64 text, standard or url-safe).
 */
export function secretSpellings(username: string, password: string): string[] {
  if (password === '') return [];
  const form = new URLSearchParams({ p: password }).toString().slice(2);
  const uri = encodeURIComponent(password);
  const lowerHex = (s: string) => s.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
  const basic = Buffer.from(`${username}:${password}`).toString('base64');
  const texts = [...new Set([password, form, lowerHex(form), uri, lowerHex(uri), JSON.stringify(password).slice(1, -1)])];
  const spellings = [
    ...texts,
    basic,
    basic.replace(/=+$/, ''),
    // A proxy that base64-encodes the whole request it logs: each text spelling inside base64.
    ...texts.flatMap((t) => base64Cores(Buffer.from(t))),
    ...base64Cores(Buffer.from(`${username}:${password}`)),
  ];
  // Longest first, so a spelling that contains another is replaced whole.
  return [...new Set(spellings)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

/** `text` with every occurrence of every spelling replaced by "[redacted]". */
export function redact(text: string, spellings: readonly string[]): string {
  let out = text;
  for (const s of spellings) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}
