/**
 * Block staging against a real Azurite, through a proxy that fails the first attempt of every stageBlock after
 * reading part of its body: blocks are sent from their parts (no joined copy), so a retry must rebuild the body
 * from the same parts and the committed blob must be exactly the source.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BlobServiceClient } from '@azure/storage-blob';
import { stageBlocks } from '../../../shared/storage/blockUpload';
import { azuriteConnectionString, startAzurite, type RunningAzurite } from '../../helpers/azurite';
import { contentBytes } from '../../helpers/blobContent';

/** Answers 503 to the first attempt of each block (by block id) once 1 KiB of its body arrived; relays the rest. */
async function startFlakyProxy(target: string): Promise<{ url: string; failed: () => number; close(): void }> {
  const upstream = new URL(target);
  const seen = new Set<string>();
  let failed = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const blockId = url.searchParams.get('comp') === 'block' ? url.searchParams.get('blockid') : null;
    if (blockId !== null && !seen.has(blockId)) {
      seen.add(blockId);
      let received = 0;
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= 1024 && !res.headersSent) {
          failed++;
          res.writeHead(503, { connection: 'close' }).end();
          req.destroy();
        }
      });
      return;
    }
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    failed: () => failed,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('stageBlocks (Azurite, failing first attempts)', () => {
  let azurite: RunningAzurite;
  let proxy: Awaited<ReturnType<typeof startFlakyProxy>>;
  before(async () => {
    azurite = await startAzurite();
    proxy = await startFlakyProxy(azurite.blobEndpoint);
  });
  after(async () => {
    proxy?.close();
    await azurite?.stop();
  });

  it('retried blocks resend the same bytes, rebuilt from their parts', async () => {
    const service = BlobServiceClient.fromConnectionString(
      azuriteConnectionString({
        blob: `${proxy.url}/devstoreaccount1`,
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
    assert.equal(proxy.failed(), 5, 'the first attempt of every block failed mid-body and was retried');
    await blob.commitBlockList(staged.blockIds);
    assert.deepEqual(await blob.downloadToBuffer(), content);
  });
});
