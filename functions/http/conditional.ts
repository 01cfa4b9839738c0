/**
 * Conditional requests (RFC 9110 §13) against a blob's ETag and Last-Modified, evaluated by the app itself: the
 * client's conditions are about the plaintext representation this API serves, and they must be decided before
 * anything is decrypted. Order per §13.2.2: If-Match, If-Unmodified-Since (only without If-Match), If-None-Match,
 * If-Modified-Since (only without If-None-Match, GET/HEAD only); then If-Range decides whether Range applies.
 */

export type PreconditionOutcome = 'proceed' | 'not-modified' | 'precondition-failed';

/** `*`, or the list of entity tags (each with its quotes, and `W/` when weak). Undefined when absent or empty. */
export type EntityTagCondition = '*' | readonly string[];

const ENTITY_TAG = /\s*((?:W\/)?"[^"]*")\s*(?:,|$)/y;

/** Parses an If-Match / If-None-Match value. Malformed members are dropped (they can never match). */
export function parseEntityTags(value: string | null | undefined): EntityTagCondition | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (trimmed === '*') return '*';
  const tags: string[] = [];
  ENTITY_TAG.lastIndex = 0;
  let m: RegExpExecArray | null;
  while (ENTITY_TAG.lastIndex < trimmed.length && (m = ENTITY_TAG.exec(trimmed)) !== null) {
    if (m[1] !== undefined) tags.push(m[1]);
  }
  return tags;
}

/** Strong comparison: both tags strong and identical. */
export function strongMatch(a: string, b: string): boolean {
  return !a.startsWith('W/') && !b.startsWith('W/') && a === b;
}

/** Weak comparison: identical once any `W/` is removed. */
export function weakMatch(a: string, b: string): boolean {
  return a.replace(/^W\//, '') === b.replace(/^W\//, '');
}

/** RFC 9110 HTTP-date (IMF-fixdate, or the obsolete forms Date.parse also reads); undefined if invalid. */
export function parseHttpDate(value: string | null | undefined): Date | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** HTTP dates have one-second precision. */
function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

export interface Validators {
  readonly etag: string;
  readonly lastModified: Date;
}

const PRECONDITION_HEADERS = ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'];

/** Whether the request carries any precondition (If-Range is not one: it only qualifies a Range). */
export function hasPreconditions(headers: Headers): boolean {
  return PRECONDITION_HEADERS.some((name) => headers.has(name));
}

/** Evaluates the preconditions of a request on an existing resource. */
export function evaluatePreconditions(headers: Headers, current: Validators, method: string): PreconditionOutcome {
  const safe = method === 'GET' || method === 'HEAD';
  const ifMatch = parseEntityTags(headers.get('if-match'));
  if (ifMatch !== undefined) {
    if (ifMatch !== '*' && !ifMatch.some((tag) => strongMatch(tag, current.etag))) return 'precondition-failed';
  } else {
    const since = parseHttpDate(headers.get('if-unmodified-since'));
    if (since !== undefined && seconds(current.lastModified) > seconds(since)) return 'precondition-failed';
  }
  const ifNoneMatch = parseEntityTags(headers.get('if-none-match'));
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch === '*' || ifNoneMatch.some((tag) => weakMatch(tag, current.etag))) {
      return safe ? 'not-modified' : 'precondition-failed';
    }
  } else if (safe) {
    const since = parseHttpDate(headers.get('if-modified-since'));
    if (since !== undefined && seconds(current.lastModified) <= seconds(since)) return 'not-modified';
  }
  return 'proceed';
}

/**
 * If-Range (RFC 9110 §13.1.5): the Range applies only if the validator still matches: an entity tag by strong
 * comparison, a date by exact equality with Last-Modified. Absent If-Range: the Range applies.
 */
export function rangeStillApplies(headers: Headers, current: Validators): boolean {
  const value = headers.get('if-range')?.trim();
  if (value === undefined || value === '') return true;
  if (value.startsWith('"') || value.startsWith('W/')) return strongMatch(value, current.etag);
  const date = parseHttpDate(value);
  return date !== undefined && seconds(date) === seconds(current.lastModified);
}
