/**
 * Cutting streams into blocks, and block staging against a real Azurite, through a proxy that answers the first attempt of every stageBlock with
 * 503 ServerBusy while its body is on the way: blocks are sent from their parts (no joined copy), so a retry must
 * rebuild the body from the same parts and the committed blob must be exactly the source.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BlobServiceClient } from '@azure/storage-blob';
import { blockIdGenerator, cutBlocks, stageBlocks } from '../../../shared/storage/blockUpload';
import { azuriteConnectionString, startAzurite, type RunningAzurite } from '../../helpers/azurite';
import { contentBytes } from '../../helpers/blobContent';
import { startStorageProxy, type StorageProxy } from '../../helpers/storageProxy';

describe('stageBlocks (Azurite, failing first attempts)', () => {
  let azurite: RunningAzurite;
  let proxy: StorageProxy;
  before(async () => {
    azurite = await startAzurite();
    proxy = await startStorageProxy(azurite.blobEndpoint);
    const attempted = new Set<string>();
    proxy.rule = ({ url }) => {
      const blockId = new URL(url, 'http://proxy').searchParams.get('blockid');
      if (blockId === null || attempted.has(blockId)) return 'forward';
      attempted.add(blockId);
      return { status: 503, code: 'ServerBusy' };
    };
  });
  after(async () => {
    await proxy?.close();
    await azurite?.stop();
  });

  it('retried blocks resend the same bytes, rebuilt from their parts', { timeout: 60_000 }, async () => {
    const service = BlobServiceClient.fromConnectionString(
      azuriteConnectionString({
        blob: proxy.blobEndpoint,
        queue: azurite.queueEndpoint,
        table: azurite.tableEndpoint,
      }),
      { retryOptions: { maxTries: 3, retryDelayInMs: 10, maxRetryDelayInMs: 50 } },
    );
    const container = service.getContainerClient('staging');
    await container.createIfNotExists();
    const content = contentBytes('staged', 0, 300_000);
    async function* pieces(): AsyncGenerator<Uint8Array> {
      // Odd-sized pieces, so every block is made of several parts and most parts are cut at a block boundary.
      for (let i = 0; i < content.length; i += 7_001) yield content.subarray(i, i + 7_001);
    }
    const blob = container.getBlockBlobClient('retried');
    const staged = await stageBlocks(blob, pieces(), { blockSize: 64 * 1024, concurrency: 2 });

    assert.equal(staged.blockIds.length, 5);
    const refused = proxy.seen.filter((s) => s.decision !== 'forward').length;
    assert.equal(refused, 5, 'the first attempt of every block was refused and retried');
    await blob.commitBlockList(staged.blockIds);
    assert.deepEqual(await blob.downloadToBuffer(), content);
  });
});

describe('block staging helpers', () => {
  it('re-cuts streams into exact blocks without losing or reordering bytes', async () => {
    const input = contentBytes('rc', 0, 10_000);
    async function* pieces(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < input.length;) {
        const n = Math.min(1 + ((i * 7) % 977), input.length - i);
        yield new Uint8Array(input.subarray(i, i + n));
        i += n;
      }
    }
    const blocks: Buffer[] = [];
    for await (const b of cutBlocks(pieces(), 1024)) {
      assert.equal(
        b.parts.reduce((n, p) => n + p.length, 0),
        b.length,
      );
      blocks.push(Buffer.concat(b.parts));
    }
    assert.deepEqual(
      blocks.map((b) => b.length),
      [...Array(9).fill(1024), 10_000 - 9 * 1024],
    );
    assert.deepEqual(Buffer.concat(blocks), input);
  });
  it('makes block ids of one length, distinct per upload', () => {
    const a = blockIdGenerator();
    const b = blockIdGenerator();
    const ids = [a(0), a(1), a(49_999), b(0)];
    assert.equal(new Set(ids.map((id) => id.length)).size, 1);
    assert.equal(new Set(ids).size, 4);
  });
});
