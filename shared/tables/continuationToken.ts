/**
 * Continuation tokens for entity listings.
 *
 * @azure/data-tables 13.3 encodes {nextPartitionKey, nextRowKey} as base64 of UTF-8 JSON but decodes the bytes
 * one by one as Latin-1, so a key with a non-ASCII character does not survive a round trip (the next page
 * would start at the wrong place). Our tokens are the same base64 JSON with every non-ASCII character
 * escaped as \uXXXX: pure ASCII, so the SDK's own decoder reads them correctly, and they stay opaque to
 * callers. Tokens from callers are untrusted: anything that is not such a document is a CseError
 * 'InvalidContinuationToken'.
 */
import { CseError } from '../errors';
import { decodeBase64Strict } from '../crypto/strictBase64';

export interface ContinuationPosition {
  readonly nextPartitionKey: string;
  readonly nextRowKey?: string | undefined;
}

export function encodeContinuationToken(position: ContinuationPosition): string {
  const doc: Record<string, string> = { nextPartitionKey: position.nextPartitionKey };
  if (position.nextRowKey) doc['nextRowKey'] = position.nextRowKey;
  const ascii = JSON.stringify(doc).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return Buffer.from(ascii, 'ascii').toString('base64');
}

/** Reads a token in either encoding (ours or the SDK's UTF-8 one). */
export function decodeContinuationToken(token: string): ContinuationPosition {
  const bad = (): never => {
    throw new CseError('InvalidContinuationToken', 'the continuation token is not one this service returned');
  };
  const bytes = typeof token === 'string' ? decodeBase64Strict(token) : undefined;
  if (bytes === undefined || bytes.length === 0) return bad();
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return bad();
  }
  if (typeof doc !== 'object' || doc === null) return bad();
  const { nextPartitionKey, nextRowKey } = doc as Record<string, unknown>;
  if (typeof nextPartitionKey !== 'string' || nextPartitionKey.length === 0) return bad();
  if (nextRowKey !== undefined && typeof nextRowKey !== 'string') return bad();
  return { nextPartitionKey, nextRowKey };
}

/** Normalizes a token from the SDK (possibly UTF-8 JSON) or a caller into the ASCII form the SDK reads back. */
export function normalizeContinuationToken(token: string | undefined): string | undefined {
  return token === undefined ? undefined : encodeContinuationToken(decodeContinuationToken(token));
}
