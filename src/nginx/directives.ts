/**
 * Reading a few directives back out of nginx's configuration, as `nginx -T` prints it (pure).
 * Not a full parser: enough to find a directive's value and the body of a named location, with
 * comments and quoted strings respected.
 */

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, M: 2592000, y: 31536000 };

/** nginx's time syntax ("90", "30s", "1m30s", "500ms") in seconds, or undefined when it is not one. */
export function parseNginxTime(text: string): number | undefined {
  const value = text.trim();
  if (/^\d+$/.test(value)) return Number(value);
  if (!/^(\d+(ms|s|m|h|d|w|M|y))+$/.test(value)) return undefined;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+)(ms|s|m|h|d|w|M|y)/g)) total += Number(amount) * UNITS[unit!]!;
  return total;
}

/** The text with every comment (a `#` outside quotes, to the end of its line) blanked out. */
export function stripComments(text: string): string {
  let out = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') {
        out += c + (text[i + 1] ?? '');
        i++;
        continue;
      }
      if (c === quote) quote = undefined;
      out += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      out += c;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else out += c;
  }
  return out;
}

/**
 * Every simple directive in `text` (comments already stripped) as its words, quotes removed:
 * `proxy_set_header X-A "b c";` is ["proxy_set_header", "X-A", "b c"]. Block openings and
 * closings end a statement too, so `location @x {` never runs into what follows.
 */
export function statements(text: string): string[][] {
  const out: string[][] = [];
  let words: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ';') {
      if (words.length > 0) out.push(words);
      words = [];
      i++;
    } else if (c === '{' || c === '}') {
      words = [];
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === '"' || c === "'") {
      let word = '';
      for (i++; i < text.length && text[i] !== c; i++) word += text[i] === '\\' ? text[++i] ?? '' : text[i];
      words.push(word);
      i++;
    } else {
      let word = '';
      for (; i < text.length && !/[\s;{}"']/.test(text[i]!); i++) word += text[i];
      words.push(word);
    }
  }
  return out;
}

/** The values (the words after the name, joined by a space) of every `name ...;` directive in `text`, in order. */
export function directiveValues(text: string, name: string): string[] {
  return statements(text)
    .filter((words) => words[0] === name)
    .map((words) => words.slice(1).join(' '));
}

/** The bodies (between the braces) of every `location <target> { ... }` block in `text` (comments already stripped). */
export function locationBodies(text: string, target: string): string[] {
  const bodies: string[] = [];
  const start = new RegExp(`(?:^|[;{}\\s])location\\s+${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*\\{`, 'g');
  for (const match of text.matchAll(start)) {
    let depth = 1;
    let quote: string | undefined;
    const from = match.index! + match[0].length;
    let i = from;
    for (; i < text.length && depth > 0; i++) {
      const c = text[i]!;
      if (quote) {
        if (c === '\\') i++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '{') depth++;
      else if (c === '}') depth--;
    }
    bodies.push(text.slice(from, i - 1));
  }
  return bodies;
}

/** A proxy_set_header's value for `header` (case-insensitive) in a block body, or undefined. */
export function proxyHeader(body: string, header: string): string | undefined {
  const found = statements(body).find((words) => words[0] === 'proxy_set_header' && words[1]?.toLowerCase() === header.toLowerCase());
  return found ? found.slice(2).join(' ') : undefined;
}
