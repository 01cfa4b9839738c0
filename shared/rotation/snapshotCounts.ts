/**
 * Snapshots and previous blob versions cannot be re-wrapped: their metadata is immutable (a snapshot is a
 * read-only copy; a previous version can only be promoted by copying it over the base blob). They keep the key
 * they were written under, so a rotation counts them per key id (`snapshotsUnderOldKeys`), telling operators
 * which key versions must stay enabled for as long as those snapshots and versions exist.
 *
 * The sweep lists blobs with snapshots and versions; the entries that are not the current blob are counted here
 * instead of being queued. Counts are per page and summed into the rotation record with the page (once, in the
 * page's transaction). The number of distinct key ids kept is bounded (metadata is untrusted: made-up key ids
 * must not grow the record without limit); the rest are summed under OTHER_KEY_IDS.
 */
import type { BlobItem } from '@azure/storage-blob';
import { parseEncryptionData } from '../crypto/encryptionData';
import { isCseError } from '../errors';

export type KeyCounts = Readonly<Record<string, number>>;

/** Distinct key ids counted per rotation before the rest go to OTHER_KEY_IDS. */
export const MAX_COUNTED_KEY_IDS = 50;
export const OTHER_KEY_IDS = '(other key ids)';
export const UNREADABLE_KEY_ID = '(unreadable encryption data)';
/** Key ids longer than this are counted under OTHER_KEY_IDS (a real key id is about 100 characters). */
const MAX_KEY_ID_LENGTH = 300;

/** A snapshot, or a previous (not current) version of a blob: listed, but not re-wrappable. */
export function isSnapshotOrPreviousVersion(item: {
  readonly snapshot?: BlobItem['snapshot'];
  readonly versionId?: BlobItem['versionId'];
  readonly isCurrentVersion?: BlobItem['isCurrentVersion'];
}): boolean {
  if (item.snapshot !== undefined && item.snapshot !== '') return true;
  return item.versionId !== undefined && item.versionId !== '' && item.isCurrentVersion !== true;
}

/** The key id in a snapshot's encryption data (UNREADABLE_KEY_ID when it does not parse). */
export function storedKeyIdOf(encryptionData: string): string {
  try {
    return parseEncryptionData(encryptionData).wrappedContentKey.keyId;
  } catch (e) {
    if (isCseError(e)) return UNREADABLE_KEY_ID;
    throw e;
  }
}

/** `a` plus `b`, keeping at most MAX_COUNTED_KEY_IDS names (the others summed under OTHER_KEY_IDS). */
export function addKeyCounts(a: KeyCounts, b: KeyCounts): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [keyId, n] of Object.entries(b)) {
    if (!Number.isSafeInteger(n) || n <= 0) continue;
    const known = Object.keys(out).filter((k) => k !== OTHER_KEY_IDS).length;
    const name =
      keyId in out || (known < MAX_COUNTED_KEY_IDS && keyId.length <= MAX_KEY_ID_LENGTH) ? keyId : OTHER_KEY_IDS;
    out[name] = (out[name] ?? 0) + n;
  }
  return out;
}

export function encodeKeyCounts(counts: KeyCounts): string {
  return JSON.stringify(counts);
}

/** Tolerant: anything that is not a JSON object of counts reads as no counts. */
export function decodeKeyCounts(text: unknown): Record<string, number> {
  if (typeof text !== 'string' || text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(parsed)) if (Number.isSafeInteger(v) && (v as number) > 0) out[k] = v as number;
  return out;
}
