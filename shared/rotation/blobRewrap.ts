/**
 * Re-wraps one blob's content key in place (FORMAT.md §7.1, the same steps as .NET's
 * UpdateClientSideKeyEncryptionKey): read the properties and ETag, re-wrap the key named in `encryptiondata`,
 * write all metadata back with `If-Match`; on 412 read again and retry. Only the metadata is written (Set Blob
 * Metadata), so the content bytes, content headers and other properties are never touched; every other
 * metadata entry is written back as read, because Set Blob Metadata replaces the whole set.
 *
 * Metadata name case: Azure keeps the case of metadata names, but Get Blob Properties reaches Node with
 * lower-cased header names, so writing back what getProperties returned would rename `MyKey` to `mykey` (and a
 * case-sensitive reader such as Python's `metadata['MyKey']` would stop finding it). The sweep's listing keeps
 * the case, so the work entry carries the names that are not lower case together with the ETag they were listed
 * at: while the ETag is unchanged those are exactly the names, and when it changed the blob's metadata is read
 * again from a one-blob listing, which keeps the case.
 *
 * A write either lands whole or not at all, so a worker killed at any point leaves the blob decryptable under its
 * old or its new key.
 */
import type { BlobClient, ContainerClient } from '@azure/storage-blob';
import { CseError } from '../errors';
import { ENCRYPTION_DATA_METADATA_KEY, parseEncryptionData, serializeEncryptionData } from '../crypto/encryptionData';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';
import { storageErrorCode, storageStatus } from '../storage/storageErrors';
import { failureReason, isTransient, reason } from './faults';
import { rewrapEncryptionData } from './rewrapKey';
import type { ObjectOutcome } from './types';
import { migrateIfV1, outcomeUnderTarget } from './v1Reencryption';

/** One blob of a work item, as the sweep listed it. */
export interface BlobWorkEntry {
  readonly name: string;
  /** ETag when listed. */
  readonly etag: string;
  /** Metadata names, as listed, that are not all lower case (usually none). */
  readonly mixedCaseNames?: readonly string[];
  /** The blob was v1.0 when listed (decides whether it counts as re-encrypted, see v1Reencryption.ts). */
  readonly listedV1?: boolean;
}

export interface RewrapContext {
  /** Resolves the key named in stored metadata (allow-listed). */
  readonly resolver: KeyResolver;
  /** The rotation's target key (its keyId is what gets stored). */
  readonly target: KeyEncryptionKey;
  /** Attempts when the object keeps changing under us (412), before recording a failure. Default 8. */
  readonly maxAttempts?: number;
  /** Waits between attempts (tests shorten it). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Re-encrypt v1.0 blobs to v2.0 instead of re-wrapping them (v1Reencryption.ts). */
  readonly reencryptV1?: boolean;
}

export const DEFAULT_MAX_ATTEMPTS = 8;

interface BlobState {
  readonly etag: string;
  /** Metadata with names in their stored case when `caseKnown`, else lower-cased. */
  readonly metadata: Record<string, string>;
  readonly caseKnown: boolean;
}

const GONE: ObjectOutcome = { kind: 'gone' };

/**
 * Throws only transient errors (Storage or Key Vault unavailable), for the work item to be retried; every
 * other problem is an outcome.
 */
export async function rewrapBlob(
  container: ContainerClient,
  entry: BlobWorkEntry,
  context: RewrapContext,
): Promise<ObjectOutcome> {
  const maxAttempts = context.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const blob = container.getBlobClient(entry.name);
  try {
    let state = await readByProperties(blob, entry);
    for (let attempt = 1; ; attempt++) {
      if (state === undefined) return GONE;
      const found = encryptionDataOf(state.metadata);
      if (found === undefined) {
        return failed('NotEncrypted', 'the blob no longer carries encryption data');
      }
      const data = parseEncryptionData(found.value);
      if (data.wrappedContentKey.keyId === context.target.keyId) {
        const settled = outcomeUnderTarget(data.protocol, entry.listedV1 === true, context.reencryptV1 === true);
        if (settled !== undefined) return settled;
      }
      if (!state.caseKnown) {
        state = await readByListing(container, entry.name);
        continue;
      }
      const v1State = { etag: state.etag, metadata: state.metadata, encryptionDataName: found.name };
      const migrated = await migrateIfV1(blob, data, v1State, context);
      if (migrated !== undefined && migrated !== 'changed') return migrated;
      if (migrated === undefined) {
        const updated = await rewrapEncryptionData(data, context.resolver, context.target);
        const metadata = { ...state.metadata };
        delete metadata[found.name];
        metadata[ENCRYPTION_DATA_METADATA_KEY] = serializeEncryptionData(updated);
        try {
          await blob.setMetadata(metadata, { conditions: { ifMatch: state.etag } });
          return { kind: 'rewrapped', legacyV1: data.protocol === '1.0' };
        } catch (e) {
          if (!isEtagMismatch(e)) throw e;
        }
      }
      if (attempt >= maxAttempts) {
        return failed('ConditionNotMet', `the blob changed during each of ${maxAttempts} attempts`);
      }
      await (context.sleep ?? defaultSleep)(backoffMs(attempt));
      state = await readByListing(container, entry.name);
    }
  } catch (e) {
    if (storageStatus(e) === 404) return GONE;
    if (isTransient(e)) throw e;
    return { kind: 'failed', reason: failureReason(e) };
  }
}

async function readByProperties(blob: BlobClient, entry: BlobWorkEntry): Promise<BlobState | undefined> {
  let properties;
  try {
    properties = await blob.getProperties();
  } catch (e) {
    if (storageStatus(e) === 404) return undefined;
    throw e;
  }
  const etag = properties.etag;
  if (etag === undefined) throw new CseError('ConditionNotMet', 'the storage service returned no ETag');
  const lowerCased = properties.metadata ?? {};
  const onlyEncryptionData = Object.keys(lowerCased).every((n) => n === ENCRYPTION_DATA_METADATA_KEY);
  if (!sameEtag(etag, entry.etag) && !onlyEncryptionData) {
    return { etag, metadata: { ...lowerCased }, caseKnown: false };
  }
  const stored = new Map((entry.mixedCaseNames ?? []).map((n) => [n.toLowerCase(), n]));
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(lowerCased)) metadata[stored.get(name) ?? name] = value;
  return { etag, metadata, caseKnown: true };
}

/**
 * Reads one blob's ETag and metadata (names in their stored case) from a listing with the blob's name as prefix:
 * listings are in name order, so the blob itself, if it exists, is the first entry.
 */
async function readByListing(container: ContainerClient, name: string): Promise<BlobState | undefined> {
  const pages = container.listBlobsFlat({ prefix: name, includeMetadata: true }).byPage({ maxPageSize: 1 });
  for await (const page of pages) {
    const first = page.segment.blobItems[0];
    if (first === undefined) continue; // an empty page with a continuation token: keep going
    if (first.name !== name) return undefined;
    const etag = first.properties.etag;
    if (etag === undefined) throw new CseError('ConditionNotMet', 'the storage service listed no ETag');
    return { etag, metadata: { ...(first.metadata ?? {}) }, caseKnown: true };
  }
  return undefined;
}

/** Listings give ETags bare (`0x8D...`), response headers quoted (`"0x8D..."`): compare the values. */
export function sameEtag(a: string, b: string): boolean {
  const bare = (e: string): string => e.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  return bare(a) === bare(b);
}

function encryptionDataOf(metadata: Record<string, string>): { name: string; value: string } | undefined {
  for (const [name, value] of Object.entries(metadata)) {
    if (name.toLowerCase() === ENCRYPTION_DATA_METADATA_KEY) return { name, value };
  }
  return undefined;
}

/** 412 because the ETag moved on; not a lease (LeaseIdMissing is also 412, and retrying cannot help it). */
function isEtagMismatch(e: unknown): boolean {
  if (storageStatus(e) !== 412) return false;
  const code = storageErrorCode(e);
  return code === undefined || code === 'ConditionNotMet';
}

function failed(code: string, message: string): ObjectOutcome {
  return { kind: 'failed', reason: reason(code, message) };
}

export function backoffMs(attempt: number): number {
  return Math.min(1000, 20 * 2 ** (attempt - 1)) * (0.5 + Math.random());
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
