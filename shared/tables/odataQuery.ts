/**
 * Query rewriting for encrypted tables (FORMAT.md §6.6):
 * - a `$select` must also fetch the two metadata properties, or nothing could be decrypted;
 * - a `$filter` that mentions an encrypted property is refused: the service only sees random-looking binary
 *   ciphertext (a new key per entity), so such a filter could never match what the caller means.
 */
import { CseError } from '../errors';
import { KEY_METADATA_PROPERTY, NAME_LIST_PROPERTY } from './entityModel';

/** OData words that are not property names (Azure Tables filter grammar). */
const KEYWORDS = new Set(['and', 'or', 'not', 'eq', 'ne', 'gt', 'ge', 'lt', 'le', 'true', 'false', 'null']);

/**
 * The property names a filter mentions, in order of first appearance. String literals ('...' with '' escapes)
 * and typed literals (datetime'...', guid'...', X'...', binary'...') are skipped, as are numbers and keywords.
 * An unterminated literal ends the scan (the service rejects such a filter anyway).
 */
export function filterPropertyNames(filter: string): string[] {
  const names: string[] = [];
  let i = 0;
  const skipLiteral = (): void => {
    // at a quote: advance past the closing quote ('' inside a literal is an escaped quote)
    i++;
    while (i < filter.length) {
      if (filter[i] === "'") {
        if (filter[i + 1] === "'") i += 2;
        else {
          i++;
          return;
        }
      } else i++;
    }
  };
  while (i < filter.length) {
    const c = filter[i] as string;
    if (c === "'") {
      skipLiteral();
    } else if (/[\p{L}_]/u.test(c)) {
      const start = i;
      while (i < filter.length && /[\p{L}\p{N}_]/u.test(filter[i] as string)) i++;
      const word = filter.slice(start, i);
      if (filter[i] === "'")
        skipLiteral(); // typed literal prefix such as datetime'...'
      else if (!KEYWORDS.has(word) && !names.includes(word)) names.push(word);
    } else if (/[0-9]/.test(c)) {
      while (i < filter.length && /[0-9A-Za-z_.]/.test(filter[i] as string)) i++;
    } else {
      i++;
    }
  }
  return names;
}

/** Throws CseError 'EncryptedPropertyFilter' when the filter mentions one of `encrypted`. */
export function assertFilterAvoidsEncrypted(filter: string, encrypted: Iterable<string>): void {
  const set = new Set(encrypted);
  const hits = filterPropertyNames(filter).filter((n) => set.has(n));
  if (hits.length > 0) {
    throw new CseError(
      'EncryptedPropertyFilter',
      `the filter mentions ${hits.join(', ')}, which ${hits.length === 1 ? 'is' : 'are'} stored encrypted: the service ` +
        'sees only ciphertext made with a different key for every entity, so it cannot compare encrypted values. ' +
        'Filter on keys or unencrypted properties and check encrypted values after reading.',
    );
  }
}

/**
 * The $select to send: the caller's list plus both metadata properties and the two keys (with a $select the
 * service returns only what is named, and both protocols need PartitionKey and RowKey to decrypt). undefined
 * (no select) and a list containing '*' mean every property, which already includes them.
 */
export function selectWithMetadata(select: readonly string[] | undefined): string[] | undefined {
  if (select === undefined || select.length === 0 || select.includes('*')) return undefined;
  return withNames(select, [KEY_METADATA_PROPERTY, NAME_LIST_PROPERTY]);
}

/** `select` plus `extra` and the two keys, without duplicates, in that order. */
export function withNames(select: readonly string[], extra: readonly string[]): string[] {
  const out = [...new Set(select)];
  for (const name of [...extra, 'PartitionKey', 'RowKey']) if (!out.includes(name)) out.push(name);
  return out;
}

/** An OData string literal ('...' with quotes doubled). */
export function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
