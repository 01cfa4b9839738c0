/**
 * Streaming block-blob upload: stage blocks with bounded concurrency while the source is still being read, then
 * let the caller commit the block list (with its metadata and headers) once the source ended cleanly.
 *
 * Memory stays at about (concurrency + 1) blocks whatever the size: the source is only pulled when a staging slot
 * is free, so a slow Storage account slows the reader (backpressure to the HTTP client) instead of buffering.
 * Staged blocks are invisible until committed; if the source fails (client disconnect) or a stage fails, nothing
 * is committed and the service discards the uncommitted blocks (after a week at most).
 */
import { randomUUID } from 'node:crypto';
import type { BlockBlobClient } from '@azure/storage-blob';

/** Azure's maximum number of committed blocks per blob. */
export const MAX_BLOCK_COUNT = 50_000;

export interface StageBlocksOptions {
  /** Bytes per block (the last block may be shorter). */
  readonly blockSize: number;
  /** Maximum stageBlock calls in flight. */
  readonly concurrency: number;
  readonly abortSignal?: AbortSignal;
}

export interface StagedBlocks {
  /** Block ids in content order, ready for commitBlockList. */
  readonly blockIds: string[];
  /** Bytes staged. */
  readonly length: number;
}

/**
 * Block ids: a per-upload random prefix (so concurrent uploads to one name never share ids) and the block index,
 * 48 characters before base64 like @azure/storage-blob's own uploads, because all uncommitted blocks of a blob
 * must have ids of one length.
 */
export function blockIdGenerator(): (index: number) => string {
  const prefix = randomUUID();
  return (index) => Buffer.from(prefix + index.toString().padStart(48 - prefix.length, '0')).toString('base64');
}

/** Stages `data` as blocks of `blockSize` bytes; throws the first source or staging error (nothing committed). */
export async function stageBlocks(
  client: BlockBlobClient,
  data: AsyncIterable<Uint8Array>,
  options: StageBlocksOptions,
): Promise<StagedBlocks> {
  const blockId = blockIdGenerator();
  const blockIds: string[] = [];
  const abort = new AbortController();
  const onOuterAbort = (): void => abort.abort(options.abortSignal?.reason);
  options.abortSignal?.addEventListener('abort', onOuterAbort, { once: true });
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let length = 0;

  const stage = (id: string, block: Buffer): void => {
    const p: Promise<void> = client
      .stageBlock(id, block, block.length, { abortSignal: abort.signal })
      .then(
        () => undefined,
        (error: unknown) => {
          failure ??= { error };
          abort.abort();
        },
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  try {
    for await (const block of rechunk(data, options.blockSize)) {
      if (failure) break;
      if (blockIds.length >= MAX_BLOCK_COUNT) {
        throw new RangeError(`Content needs more than ${MAX_BLOCK_COUNT} blocks of ${options.blockSize} bytes.`);
      }
      const id = blockId(blockIds.length);
      blockIds.push(id);
      length += block.length;
      stage(id, block);
      while (inFlight.size >= options.concurrency && !failure) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } catch (error) {
    // The source failed (e.g. the client went away): cancel what is in flight and let it settle before reporting,
    // so no stage call outlives the request.
    abort.abort();
    await Promise.allSettled(inFlight);
    throw error;
  } finally {
    options.abortSignal?.removeEventListener('abort', onOuterAbort);
  }
  if (failure) throw failure.error;
  return { blockIds, length };
}

/**
 * Re-cuts a byte stream into chunks of exactly `size` bytes (the last may be shorter, an empty stream gives no
 * chunk). Input chunks that already have the right size pass through without a copy.
 */
export async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`Invalid chunk size ${size}`);
  let pending: Buffer[] = [];
  let pendingLength = 0;
  for await (const input of source) {
    let chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    while (chunk.length > 0) {
      if (pendingLength === 0 && chunk.length >= size) {
        yield chunk.subarray(0, size);
        chunk = chunk.subarray(size);
        continue;
      }
      const take = Math.min(size - pendingLength, chunk.length);
      pending.push(chunk.subarray(0, take));
      pendingLength += take;
      chunk = chunk.subarray(take);
      if (pendingLength === size) {
        yield Buffer.concat(pending, pendingLength);
        pending = [];
        pendingLength = 0;
      }
    }
  }
  if (pendingLength > 0) yield Buffer.concat(pending, pendingLength);
}

/**
 * Joins small chunks into chunks of at least `size` bytes (the last may be shorter); a chunk already that large
 * passes through without a copy. Streams through several async layers cost per chunk, not per byte, and network
 * streams deliver ~64 KiB pieces, so joining them to ~1 MiB saves much CPU for at most one chunk of memory.
 */
export async function* coalesceChunks(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const input of source) {
    const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    parts.push(chunk);
    length += chunk.length;
    if (length >= size) {
      yield parts.length === 1 ? chunk : Buffer.concat(parts, length);
      parts = [];
      length = 0;
    }
  }
  if (length > 0) yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
}
