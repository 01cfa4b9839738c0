import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { TableClient } from '@azure/data-tables';
import { startAzurite, tableClientOptions } from '../helpers/azurite';
import { isProcessAlive } from '../helpers/localHost';

describe('startAzurite', () => {
  it('serves blob, queue and table on free ports, stops, and keeps data under `location` across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'azurite-'));
    try {
      const first = await startAzurite({ location: dir });
      try {
        for (const port of Object.values(first.ports)) assert.ok(port > 0 && (port < 10000 || port > 10002));
        const container = BlobServiceClient.fromConnectionString(first.connectionString).getContainerClient('box');
        await container.create();
        await container.getBlockBlobClient('b').upload('hello', 5);
        assert.equal((await container.getBlockBlobClient('b').downloadToBuffer()).toString(), 'hello');

        const queue = QueueServiceClient.fromConnectionString(first.connectionString).getQueueClient('kept');
        await queue.create();
        await queue.sendMessage('persisted');

        const table = TableClient.fromConnectionString(first.connectionString, 'table1', tableClientOptions);
        await table.createTable();
        await table.createEntity({ partitionKey: 'p', rowKey: 'r', v: 1 });
        assert.equal((await table.getEntity<{ v: number }>('p', 'r')).v, 1);
      } finally {
        await first.stop();
      }
      await first.stop(); // idempotent
      assert.equal(isProcessAlive(first.pid), false, 'its process is gone');
      assert.ok(readdirSync(dir).length > 0, 'data on disk');

      const second = await startAzurite({ location: dir });
      try {
        const again = QueueServiceClient.fromConnectionString(second.connectionString).getQueueClient('kept');
        assert.equal((await again.peekMessages()).peekedMessageItems[0]?.messageText, 'persisted');
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
