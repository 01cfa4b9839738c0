/**
 * Work items: one page of a sweep's listing (up to a few hundred objects), stored once as an entity of the
 * `rotations` table and named by a small queue message. Storing the page (rather than sending it in the message)
 * fixes its contents: however often the sweep step that listed it is redelivered, and however the listing
 * changes meanwhile, the page's objects are those of the first listing, so its result is recorded once for one
 * set of objects.
 *
 * Entries are kept as compact UTF-8 JSON split over Edm.Binary properties (`o0`, `o1`, ...) of at most 60,000
 * bytes each, under the service's 64 KiB per property (binary, unlike strings, cannot be split inside a UTF-16
 * surrogate pair). A listing page whose entries would not fit comfortably in one entity (1 MiB) is split into
 * parts; parts are created together in one transaction.
 */
import { CseError } from '../errors';
import type { BlobWorkEntry } from './blobRewrap';
import type { EntityWorkEntry } from './entityRewrap';

export type WorkEntries =
  | { readonly kind: 'blob'; readonly entries: readonly BlobWorkEntry[] }
  | { readonly kind: 'entity'; readonly entries: readonly EntityWorkEntry[] };

export const CHUNK_BYTES = 60_000;
/** Encoded entries per part: leaves room for the failure list (reasons are bounded) within the 1 MiB entity limit. */
export const PART_BYTES = 256 * 1024;

/**
 * Wire form: blobs `[name, etag]` or `[name, etag, [MixedCaseNames]]`, with a fourth element `1` when the blob
 * was v1.0 when listed (`[name, etag, [...], 1]`); entities `[partitionKey, rowKey]`.
 */
type BlobTuple = [string, string] | [string, string, string[]] | [string, string, string[], 1];
type EntityTuple = [string, string];

export function encodeEntries(work: WorkEntries): Buffer {
  const tuples =
    work.kind === 'blob'
      ? work.entries.map((e): BlobTuple =>
          e.listedV1 === true
            ? [e.name, e.etag, [...(e.mixedCaseNames ?? [])], 1]
            : e.mixedCaseNames && e.mixedCaseNames.length > 0
              ? [e.name, e.etag, [...e.mixedCaseNames]]
              : [e.name, e.etag],
        )
      : work.entries.map((e): EntityTuple => [e.partitionKey, e.rowKey]);
  return Buffer.from(JSON.stringify(tuples), 'utf8');
}

export function decodeEntries(kind: 'blob' | 'entity', bytes: Buffer): WorkEntries {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw corrupt('its entries are not JSON');
  }
  if (!Array.isArray(parsed)) throw corrupt('its entries are not a list');
  if (kind === 'blob') {
    const entries = parsed.map((t: unknown): BlobWorkEntry => {
      if (!Array.isArray(t) || typeof t[0] !== 'string' || typeof t[1] !== 'string') throw corrupt('bad blob entry');
      const names: unknown = t[2];
      if (names === undefined) return { name: t[0], etag: t[1] };
      if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw corrupt('bad metadata names');
      const listedV1 = t[3] === 1 ? { listedV1: true as const } : {};
      return names.length === 0 && t[3] === 1
        ? { name: t[0], etag: t[1], ...listedV1 }
        : { name: t[0], etag: t[1], mixedCaseNames: names as string[], ...listedV1 };
    });
    return { kind, entries };
  }
  const entries = parsed.map((t: unknown): EntityWorkEntry => {
    if (!Array.isArray(t) || typeof t[0] !== 'string' || typeof t[1] !== 'string') throw corrupt('bad entity entry');
    return { partitionKey: t[0], rowKey: t[1] };
  });
  return { kind, entries };
}

/** Splits a page's entries into parts of at most PART_BYTES encoded (at least one part, possibly empty). */
export function splitIntoParts(work: WorkEntries): WorkEntries[] {
  const parts: WorkEntries[] = [];
  let current: unknown[] = [];
  let size = 2;
  const flush = (): void => {
    parts.push({ kind: work.kind, entries: current } as WorkEntries);
    current = [];
    size = 2;
  };
  for (const entry of work.entries as readonly unknown[]) {
    const entrySize = Buffer.byteLength(JSON.stringify(entry), 'utf8') + 1;
    if (current.length > 0 && size + entrySize > PART_BYTES) flush();
    current.push(entry);
    size += entrySize;
  }
  if (current.length > 0 || parts.length === 0) flush();
  return parts;
}

/** `{o0: bytes, o1: bytes, ...}` for `prefix` 'o'. */
export function toChunkProperties(prefix: string, bytes: Buffer): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (let i = 0, offset = 0; offset < bytes.length || i === 0; i++, offset += CHUNK_BYTES) {
    out[`${prefix}${i}`] = bytes.subarray(offset, offset + CHUNK_BYTES);
  }
  return out;
}

export function fromChunkProperties(prefix: string, entity: Readonly<Record<string, unknown>>): Buffer {
  const chunks: Buffer[] = [];
  for (let i = 0; ; i++) {
    const value = entity[`${prefix}${i}`];
    if (value === undefined || value === null) break;
    if (!(value instanceof Uint8Array)) throw corrupt(`property ${prefix}${i} is not binary`);
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

function corrupt(what: string): CseError {
  return new CseError('InvalidMessage', `rotation work item is corrupt: ${what}`);
}
