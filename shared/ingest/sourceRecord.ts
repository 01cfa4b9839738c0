/**
 * The record an ingested target carries in its metadata of where it came from. It is what makes ingestion
 * idempotent: a redelivered message whose source is gone completes as done when the target records that source,
 * and a message whose source is still there at the recorded ETag only needs the source deleted (the target is
 * not written again).
 *
 *   cse_ingest_source_container  the source container
 *   cse_ingest_source_name       the source blob name, percent-encoded (encodeURIComponent): metadata values
 *                                are ASCII header values, blob names are any Unicode
 *   cse_ingest_source_etag       the source's ETag when it was read (quoted, as Storage returns it)
 *   cse_ingest_content_sha256    inline payloads: SHA-256 (hex) of the plaintext, instead of the three above
 *
 * Names are lower case (Node lower-cases response header names, so metadata always comes back lower case).
 * A source's own `cse_ingest_*` entries (a blob ingested before and now ingested again) are not carried over:
 * the target records its own source.
 */
import type { BlobMetadata } from '../storage/metadata';
import type { BlobRef } from './ingestRequest';

export const RECORD_PREFIX = 'cse_ingest_';
export const SOURCE_CONTAINER_KEY = 'cse_ingest_source_container';
export const SOURCE_NAME_KEY = 'cse_ingest_source_name';
export const SOURCE_ETAG_KEY = 'cse_ingest_source_etag';
export const CONTENT_SHA256_KEY = 'cse_ingest_content_sha256';

export type SourceRecord =
  | { readonly kind: 'blob'; readonly source: BlobRef; readonly etag: string }
  | { readonly kind: 'inline'; readonly sha256: string };

/** The metadata entries for `record`. */
export function recordMetadata(record: SourceRecord): Record<string, string> {
  if (record.kind === 'inline') return { [CONTENT_SHA256_KEY]: record.sha256 };
  return {
    [SOURCE_CONTAINER_KEY]: record.source.container,
    [SOURCE_NAME_KEY]: encodeURIComponent(record.source.name),
    [SOURCE_ETAG_KEY]: record.etag,
  };
}

/** The record in a target's metadata, if it has a complete one. */
export function readRecord(metadata: BlobMetadata | undefined): SourceRecord | undefined {
  const get = (key: string): string | undefined => lookup(metadata, key);
  const sha256 = get(CONTENT_SHA256_KEY);
  const container = get(SOURCE_CONTAINER_KEY);
  const encodedName = get(SOURCE_NAME_KEY);
  const etag = get(SOURCE_ETAG_KEY);
  if (container !== undefined && encodedName !== undefined && etag !== undefined) {
    let name: string;
    try {
      name = decodeURIComponent(encodedName);
    } catch {
      return undefined;
    }
    return { kind: 'blob', source: { container, name }, etag };
  }
  if (sha256 !== undefined) return { kind: 'inline', sha256 };
  return undefined;
}

/** Whether `record` names `source` (any version). */
export function recordsSource(record: SourceRecord | undefined, source: BlobRef): boolean {
  return record?.kind === 'blob' && record.source.container === source.container && record.source.name === source.name;
}

/** Whether `record` names `source` at exactly `etag`: that version of the source is already in the target. */
export function recordsSourceVersion(record: SourceRecord | undefined, source: BlobRef, etag: string): boolean {
  return recordsSource(record, source) && record?.kind === 'blob' && record.etag === etag;
}

/** User metadata without any `cse_ingest_*` entries (names lower-cased). */
export function withoutRecord(metadata: BlobMetadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata)) {
    const lower = name.toLowerCase();
    if (!lower.startsWith(RECORD_PREFIX)) out[lower] = value;
  }
  return out;
}

/** Case-insensitive lookup: listings keep the writer's case, getProperties lower-cases. */
function lookup(metadata: BlobMetadata | undefined, key: string): string | undefined {
  if (metadata === undefined) return undefined;
  for (const [name, value] of Object.entries(metadata)) {
    if (name.toLowerCase() === key) return value;
  }
  return undefined;
}
