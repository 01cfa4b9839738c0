/**
 * The plaintext of `_ClientEncryptionMetadata2`: the names of the encrypted properties, in entity order.
 *
 * Writing:
 *   1.0  Python's `json.dumps(list)` form, `["a", "b"]` (", " separator, non-ASCII escaped): byte-identical to
 *        the only maintained legacy writer, so our 1.0 output matches its vectors bit for bit. .NET and Python
 *        readers parse any JSON list.
 *   2.0  compact JSON, `["a","b"]`.
 * Reading (FORMAT.md §6.4):
 *   JSON for everything except the legacy Java layout, which wrote `[a, b]` (Arrays.toString, not JSON); that
 *   one is read the way legacy Java reads it (strip brackets, split on ',', trim spaces and quotes), which also
 *   accepts JSON lists.
 */
import { CseError } from '../errors';

export function serializeNameListV1(names: readonly string[]): string {
  return `[${names.map(pythonJsonString).join(', ')}]`;
}

export function serializeNameListV2(names: readonly string[]): string {
  return JSON.stringify(names);
}

/** Python json.dumps string literal (ensure_ascii): non-ASCII as \uXXXX (surrogate pairs as two escapes). */
function pythonJsonString(value: string): string {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Parses a decrypted name list. Throws CseError `failureCode` when it is not a list of distinct non-empty
 * strings: 'IntegrityCheckFailed' for 1.0 (garbage that happened to have valid padding), 'InvalidEncryptionData'
 * for authenticated 2.0 data (a writer bug).
 */
export function parseNameList(
  text: string,
  javaLayout: boolean,
  failureCode: 'IntegrityCheckFailed' | 'InvalidEncryptionData',
): string[] {
  const fail = (why: string): never => {
    throw new CseError(failureCode, `the encrypted property list (_ClientEncryptionMetadata2) ${why}`);
  };
  let names: unknown;
  if (javaLayout) {
    const trimmed = text.trim();
    if (!trimmed.startsWith('[') || !trimmed.endsWith(']')) fail('is not a bracketed list');
    const inner = trimmed.slice(1, -1).trim();
    names = inner === '' ? [] : inner.split(',').map((s) => s.trim().replace(/^"(.*)"$/s, '$1'));
  } else {
    try {
      names = JSON.parse(text);
    } catch {
      fail('is not a JSON list');
    }
  }
  if (!Array.isArray(names)) return fail('is not a list');
  const seen = new Set<string>();
  for (const name of names) {
    if (typeof name !== 'string' || name.length === 0) fail('contains something other than a property name');
    if (seen.has(name)) fail(`names ${JSON.stringify(name)} twice`);
    seen.add(name);
  }
  return [...seen];
}
