/**
 * Plaintext byte ranges: the HTTP `Range` header (RFC 9110 §14.1-14.2, single byte range only) and the CLI's
 * strict `--range` form, both resolved against a length the same way.
 */
import { CseError } from '../errors';

/** A requested byte range before the length is known. Positions are 0-based; `end` is inclusive. */
export type RangeRequest =
  | { readonly kind: 'bounded'; readonly start: number; readonly end: number } // a-b
  | { readonly kind: 'from'; readonly start: number } // a-
  | { readonly kind: 'suffix'; readonly length: number }; // -n

const SPEC = /^(?:(\d+)-(\d*)|-(\d+))$/;

/**
 * Parses a `Range` header value. Returns undefined when the header is absent, malformed, uses another unit, or
 * asks for several ranges: HTTP lets a server ignore such headers and answer with the whole content, and we do.
 */
export function parseRangeHeader(header: string | null | undefined): RangeRequest | undefined {
  if (header === undefined || header === null) return undefined;
  const eq = header.indexOf('=');
  if (eq < 0) return undefined;
  // Range units are case-insensitive (RFC 9110 §14.1); optional whitespace around the range set is tolerated.
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return undefined;
  const set = header.slice(eq + 1).trim();
  if (set.includes(',')) return undefined;
  return parseSpec(set);
}

/** Parses the CLI form `a-b`, `a-` or `-n`. Throws CseError 'InvalidRange' saying what is wrong. */
export function parseRangeSpec(spec: string): RangeRequest {
  const parsed = parseSpec(spec);
  if (parsed !== undefined) return parsed;
  const bounded = /^(\d+)-(\d+)$/.exec(spec);
  if (bounded !== null && Number(bounded[1]) > Number(bounded[2])) {
    throw new CseError('InvalidRange', `range ${JSON.stringify(spec)} ends before it starts`);
  }
  throw new CseError(
    'InvalidRange',
    `range ${JSON.stringify(spec)} is not of the form a-b (inclusive), a- (to the end) or -n (the last n bytes)`,
  );
}

/**
 * Resolves a request against the total length: the inclusive span to send, clamped to the content, or
 * 'unsatisfiable' (start at or past the end, a suffix of 0, or empty content).
 */
export function resolveRange(req: RangeRequest, total: number): { start: number; end: number } | 'unsatisfiable' {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError('total must be a non-negative integer');
  if (total === 0) return 'unsatisfiable';
  switch (req.kind) {
    case 'bounded':
    case 'from': {
      if (req.start >= total) return 'unsatisfiable';
      const end = req.kind === 'bounded' ? Math.min(req.end, total - 1) : total - 1;
      return { start: req.start, end };
    }
    case 'suffix':
      if (req.length === 0) return 'unsatisfiable';
      return { start: Math.max(0, total - req.length), end: total - 1 };
  }
}

function parseSpec(spec: string): RangeRequest | undefined {
  const m = SPEC.exec(spec);
  if (m === null) return undefined;
  if (m[3] !== undefined) return { kind: 'suffix', length: toPosition(m[3]) };
  const start = toPosition(m[1]!);
  if (m[2] === '') return { kind: 'from', start };
  const end = toPosition(m[2]!);
  // RFC 9110: a range whose last position is before its first is invalid (the header is then ignored).
  if (end < start) return undefined;
  return { kind: 'bounded', start, end };
}

/** Digits to a number; positions beyond 2^53 are clamped (no content is that long, so the meaning is kept). */
function toPosition(digits: string): number {
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : Number.MAX_SAFE_INTEGER;
}
