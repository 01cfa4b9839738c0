/**
 * Writes an ingestion target: the stored bytes (v2.0 ciphertext, or an already-encrypted source's bytes as they
 * are) staged as blocks with bounded concurrency (shared/storage/blockUpload.ts), then ONE commitBlockList that
 * carries the metadata (encryption data and source record) and the content headers. Until that commit the target
 * does not exist (or keeps its previous content): a crash or a failed read leaves only uncommitted blocks, which
 * the next attempt's commit discards.
 *
 * EncryptedBlobStore.upload does the same for the HTTP API; ingestion has its own because it also copies stored
 * bytes unchanged, and because it must be able to stop between staging and commit (crash tests).
 */
import type { BlockBlobClient } from '@azure/storage-blob';
import type { ContentHeaders } from '../storage/encryptedBlobStore';
import type { BlobMetadata } from '../storage/metadata';
import { stageBlocks } from '../storage/blockUpload';
import { NONCE_LENGTH, REGION_LENGTH, TAG_LENGTH } from '../crypto/regionMath';

/** One v2 region as stored: a block holds exactly one region, so blocks line up with what readers fetch. */
export const DEFAULT_INGEST_BLOCK_SIZE = REGION_LENGTH + NONCE_LENGTH + TAG_LENGTH;
/** stageBlock calls in flight: memory is about (this + 1) blocks. */
export const DEFAULT_INGEST_CONCURRENCY = 4;

export interface TargetWriteOptions {
  readonly metadata: BlobMetadata;
  readonly contentHeaders: ContentHeaders;
  readonly blockSize?: number | undefined;
  readonly concurrency?: number | undefined;
  /** Runs after every block is staged and before the commit. */
  readonly beforeCommit?: () => void | Promise<void>;
}

export interface CommittedTarget {
  readonly etag: string;
  /** Bytes stored. */
  readonly storedLength: number;
}

export async function writeTarget(
  client: BlockBlobClient,
  stored: AsyncIterable<Uint8Array>,
  options: TargetWriteOptions,
): Promise<CommittedTarget> {
  const staged = await stageBlocks(client, stored, {
    blockSize: options.blockSize ?? DEFAULT_INGEST_BLOCK_SIZE,
    concurrency: options.concurrency ?? DEFAULT_INGEST_CONCURRENCY,
  });
  await options.beforeCommit?.();
  const headers = options.contentHeaders;
  const committed = await client.commitBlockList(staged.blockIds, {
    metadata: { ...options.metadata },
    blobHTTPHeaders: {
      blobContentType: headers.contentType,
      blobCacheControl: headers.cacheControl,
      blobContentDisposition: headers.contentDisposition,
      blobContentEncoding: headers.contentEncoding,
      blobContentLanguage: headers.contentLanguage,
    },
  });
  if (committed.etag === undefined) throw new Error('Storage committed the target without returning an ETag');
  return { etag: committed.etag, storedLength: staged.length };
}
