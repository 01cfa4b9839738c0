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
import { Readable } from 'node:stream';
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

  const stage = (id: string, block: Block): void => {
    const p: Promise<void> = client
      .stageBlock(id, blockBody(block), block.length, { abortSignal: abort.signal })
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
    for await (const block of cutBlocks(data, options.blockSize)) {
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

/** One block's bytes: the pieces of the source it is made of, in order, `length` bytes in all. */
export interface Block {
  readonly parts: readonly Buffer[];
  readonly length: number;
}

/**
 * The request body of a block. Sent from its parts rather than joined into one Buffer first, which would
 * allocate and copy every uploaded byte once more (and Buffer memory is what makes V8 collect garbage, after
 * every few tens of MiB of it). The SDK calls the factory again for each retry, so a retried stageBlock resends
 * the same bytes.
 */
function blockBody(block: Block): Buffer | (() => NodeJS.ReadableStream) {
  if (block.parts.length === 1) return block.parts[0]!;
  return () => Readable.from(block.parts, { objectMode: false });
}

/**
 * Cuts a byte stream into blocks of exactly `size` bytes (the last may be shorter, an empty stream gives no
 * block), without copying: a block is the list of (sub)chunks it is made of.
 */
export async function* cutBlocks(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Block> {
  if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`Invalid block size ${size}`);
  let parts: Buffer[] = [];
  let length = 0;
  for await (const input of source) {
    let chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    while (chunk.length > 0) {
      const take = Math.min(size - length, chunk.length);
      parts.push(take === chunk.length ? chunk : chunk.subarray(0, take));
      length += take;
      chunk = chunk.subarray(take);
      if (length === size) {
        yield { parts, length };
        parts = [];
        length = 0;
      }
    }
  }
  if (length > 0) yield { parts, length };
}
