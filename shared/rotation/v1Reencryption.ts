/**
 * v1.0 -> v2.0 migration of one blob, for rotations started with `reencryptV1` (the Azure docs tell v1 users to
 * migrate: v1.0 is AES-CBC without integrity, CVE-2022-30187). Unlike a re-wrap this rewrites the content:
 *
 *   read the properties under `If-Match` (the ETag the re-wrap step read), download under the same ETag, decrypt
 *   v1 as it streams, encrypt v2.0 under the rotation's target key with a new content key, stage the blocks,
 *   and commit them under `If-Match`, with the content headers, the user metadata (names in their stored case),
 *   the blob index tags and an explicitly set access tier carried over.
 *
 * The commit is the only write and is atomic: a worker killed before it leaves the v1 blob as it was (staged
 * blocks are discarded by the service), and a commit that finds the blob changed (412) writes nothing and is
 * reported as `changed`, for the caller to read the blob again. Memory stays at a few blocks whatever the size.
 *
 * What this cannot carry over: the stored Content-MD5 (it was the MD5 of the old ciphertext), the creation time
 * and the blob's previous snapshots/versions (those keep the v1 content under their old key; see
 * snapshotsUnderOldKeys). v1 content has no integrity protection, so tampering that survives the padding check
 * is re-encrypted as is; tampering that breaks the padding fails the blob (IntegrityCheckFailed) and nothing is
 * written.
 */
import type { BlobClient, BlobGetPropertiesResponse, BlockBlobTier } from '@azure/storage-blob';
import { openBlobDecryption } from '../crypto/blobDecryption';
import { startBlobEncryption } from '../crypto/blobEncryption';
import { ENCRYPTION_DATA_METADATA_KEY, type ContentProtocol, type EncryptionData } from '../crypto/encryptionData';
import { NONCE_LENGTH, REGION_LENGTH, TAG_LENGTH } from '../crypto/regionMath';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';
import { stageBlocks } from '../storage/blockUpload';
import { storageStatus } from '../storage/storageErrors';
import type { ObjectOutcome } from './types';

/** Two stored v2 regions per block, like the blob store's uploads. */
export const REENCRYPT_BLOCK_SIZE = 2 * (REGION_LENGTH + NONCE_LENGTH + TAG_LENGTH);
const STAGE_CONCURRENCY = 2;

/** What the re-wrap step already knows about the blob. */
export interface V1BlobState {
  /** The ETag every read and the commit are conditioned on. */
  readonly etag: string;
  /** All metadata, names in their stored case (the encryption data among them, under `encryptionDataName`). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly encryptionDataName: string;
}

export type ReencryptionResult =
  /** Committed as v2.0 under the target key. */
  | { readonly kind: 'reencrypted' }
  /** The blob changed since `etag` was read (412): nothing was written. */
  | { readonly kind: 'changed' }
  /** Cannot be rewritten here (an archived blob, which cannot be read, or not a block blob): re-wrap it instead. */
  | { readonly kind: 'notRewritable'; readonly why: string };

/**
 * Throws what reading or decrypting throws (CseError for a blob that cannot be decrypted, Storage errors for
 * the caller to classify); 404 propagates as a Storage error (the caller counts the blob as gone).
 */
export async function reencryptV1Blob(
  blob: BlobClient,
  state: V1BlobState,
  keys: { readonly resolver: KeyResolver; readonly target: KeyEncryptionKey },
): Promise<ReencryptionResult> {
  const ifMatch = { conditions: { ifMatch: state.etag } };
  let properties: BlobGetPropertiesResponse;
  try {
    properties = await blob.getProperties(ifMatch);
  } catch (e) {
    if (storageStatus(e) === 412) return { kind: 'changed' };
    throw e;
  }
  if (properties.blobType !== undefined && properties.blobType !== 'BlockBlob') {
    return { kind: 'notRewritable', why: `it is a ${properties.blobType}` };
  }
  if (properties.accessTier === 'Archive' || properties.archiveStatus !== undefined) {
    return { kind: 'notRewritable', why: 'it is archived' };
  }
  const encryptionData = state.metadata[state.encryptionDataName];
  if (encryptionData === undefined) throw new Error('the encryption data is not among the metadata given');

  // Opened (and the old content key unwrapped) before anything is downloaded.
  const decryptor = await openBlobDecryption(encryptionData, keys.resolver, { allowV1: true });
  const session = await startBlobEncryption(keys.target);
  const tags = (properties.tagCount ?? 0) > 0 ? (await blob.getTags()).tags : undefined;

  let download;
  try {
    download = await blob.download(0, undefined, ifMatch);
  } catch (e) {
    if (storageStatus(e) === 412) return { kind: 'changed' };
    throw e;
  }
  const body = download.readableStreamBody;
  if (body === undefined) throw new Error('the download has no body');
  const plan = decryptor.planWhole(properties.contentLength ?? 0);
  const blockBlob = blob.getBlockBlobClient();
  let staged;
  try {
    const plaintext = decryptor.decryptRange(body as AsyncIterable<Uint8Array>, plan);
    staged = await stageBlocks(blockBlob, session.encrypt(plaintext), {
      blockSize: REENCRYPT_BLOCK_SIZE,
      concurrency: STAGE_CONCURRENCY,
    });
  } finally {
    (body as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
  }

  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(state.metadata)) {
    if (name !== state.encryptionDataName) metadata[name] = value;
  }
  metadata[ENCRYPTION_DATA_METADATA_KEY] = session.metadataValue;
  const tier = explicitTier(properties);
  try {
    await blockBlob.commitBlockList(staged.blockIds, {
      ...ifMatch,
      metadata,
      blobHTTPHeaders: {
        blobContentType: properties.contentType,
        blobContentEncoding: properties.contentEncoding,
        blobContentLanguage: properties.contentLanguage,
        blobContentDisposition: properties.contentDisposition,
        blobCacheControl: properties.cacheControl,
      },
      ...(tags === undefined ? {} : { tags }),
      ...(tier === undefined ? {} : { tier }),
    });
  } catch (e) {
    if (storageStatus(e) === 412) return { kind: 'changed' };
    throw e;
  }
  return { kind: 'reencrypted' };
}

/** The blob's tier when it was set explicitly (an inferred tier follows the account default by itself). */
function explicitTier(properties: BlobGetPropertiesResponse): BlockBlobTier | undefined {
  if (properties.accessTierInferred !== false) return undefined;
  const tier = properties.accessTier;
  return tier === 'Hot' || tier === 'Cool' || tier === 'Cold' ? (tier as BlockBlobTier) : undefined;
}

/**
 * What a blob already under the target key counts as, or undefined when it still needs work (a v1.0 blob in a
 * rotation that re-encrypts). Like every outcome it depends only on the blob's state when listed (`listedV1`) and
 * now, never on which delivery looks: a blob listed as v1.0 and now v2.0 under the target was re-encrypted (by
 * an earlier delivery that was cut short, or by whoever rewrote it) when the rotation re-encrypts, else re-wrapped.
 */
export function outcomeUnderTarget(
  protocolNow: ContentProtocol,
  listedV1: boolean,
  reencryptV1: boolean,
): ObjectOutcome | undefined {
  if (protocolNow === '1.0') return reencryptV1 ? undefined : { kind: 'rewrapped', legacyV1: true };
  return listedV1 && reencryptV1 ? { kind: 'reencrypted' } : { kind: 'rewrapped', legacyV1: false };
}

/**
 * The re-wrap step's hook for v1.0 blobs (blobRewrap.ts): undefined when the blob is to be re-wrapped as usual
 * (not v1.0, re-encryption off, or a blob that cannot be rewritten here), an outcome when it was re-encrypted (or
 * needs nothing more), 'changed' when it changed under us (the caller reads it again and retries, as on a 412).
 */
export async function migrateIfV1(
  blob: BlobClient,
  data: EncryptionData,
  state: V1BlobState,
  context: { readonly resolver: KeyResolver; readonly target: KeyEncryptionKey; readonly reencryptV1?: boolean },
): Promise<ObjectOutcome | 'changed' | undefined> {
  if (data.protocol !== '1.0' || context.reencryptV1 !== true) return undefined;
  const result = await reencryptV1Blob(blob, state, context);
  switch (result.kind) {
    case 'reencrypted':
      return { kind: 'reencrypted' };
    case 'changed':
      return 'changed';
    case 'notRewritable':
      // Re-wrapped instead, like any v1.0 blob; if it is under the target already there is nothing to re-wrap.
      return data.wrappedContentKey.keyId === context.target.keyId ? { kind: 'rewrapped', legacyV1: true } : undefined;
  }
}
