/**
 * Parsing the configuration file's YAML into a plain object, with every syntax problem and
 * repeated key reported by line (pure). yaml's own uniqueKeys check compares each key with every
 * earlier one, which takes seconds for a file with thousands of keys; keys are checked here with
 * one Set per mapping instead, so parsing stays linear in the size of the file.
 */
import { LineCounter, isScalar, parseDocument, visit } from 'yaml';

/** A key as shown in a message: as is when plain and short, else quoted and cut to 64 characters. */
export function showKey(key: string): string {
  if (/^[A-Za-z0-9_.-]{1,64}$/.test(key)) return key;
  return key.length > 64 ? `${JSON.stringify(key.slice(0, 64))}…` : JSON.stringify(key);
}

/** Parses `text`; problems are appended to `problems` and the object is {} when there are any. */
export function parseYamlConfig(text: string, problems: string[]): Record<string, unknown> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false, lineCounter });
  for (const error of doc.errors) {
    const at = lineCounter.linePos(error.pos[0]);
    const firstLine = error.message.split('\n')[0] ?? error.message;
    problems.push(`YAML syntax at line ${at.line}, column ${at.col}: ${firstLine}`);
  }
  if (doc.errors.length > 0) return {};
  const before = problems.length;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const { key } of map.items) {
        const name = isScalar(key) ? String(key.value) : String(key);
        if (name === '<<') continue;
        if (seen.has(name)) {
          const at = isScalar(key) && key.range ? lineCounter.linePos(key.range[0]) : undefined;
          problems.push(`YAML: the key ${showKey(name)} is repeated${at ? ` at line ${at.line}, column ${at.col}` : ''}; keep one`);
        }
        seen.add(name);
      }
    },
  });
  if (problems.length > before) return {};
  let value: unknown;
  try {
    // yaml refuses to expand an alias more than 100 times (a "billion laughs" file).
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    problems.push(`YAML: ${error instanceof Error ? error.message : String(error)}`);
    return {};
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push('the file must be a YAML mapping (key: value), not a list or a scalar');
    return {};
  }
  return value as Record<string, unknown>;
}
