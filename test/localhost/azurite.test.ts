import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { TableClient } from '@azure/data-tables';
import { startAzurite, tableClientOptions, type RunningAzurite } from '../helpers/azurite';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startAzurite', () => {
  let azurite: RunningAzurite;
  before(async () => {
    azurite = await startAzurite();
  });
  after(() => azurite.stop());

  it('serves blob, queue and table on free ports (never 10000-10002) through its connection string', async () => {
    for (const port of Object.values(azurite.ports)) assert.ok(port > 0 && (port < 10000 || port > 10002));
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('container1');
    await container.create();
    await container.getBlockBlobClient('b').upload('hello', 5);
    assert.equal((await container.getBlockBlobClient('b').downloadToBuffer()).toString(), 'hello');

    const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient('queue1');
    await queue.create();
    await queue.sendMessage('m');
    assert.equal((await queue.receiveMessages()).receivedMessageItems[0]?.messageText, 'm');

    const table = TableClient.fromConnectionString(azurite.connectionString, 'table1', tableClientOptions);
    await table.createTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'r', v: 1 });
    assert.equal((await table.getEntity<{ v: number }>('p', 'r')).v, 1);
  });

  it('stops its process, and stop() is idempotent', async () => {
    const other = await startAzurite();
    assert.ok(isAlive(other.pid));
    await other.stop();
    await other.stop();
    assert.equal(isAlive(other.pid), false);
  });

  it('keeps data under `location` across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'azurite-'));
    try {
      const first = await startAzurite({ location: dir });
      const queue = QueueServiceClient.fromConnectionString(first.connectionString).getQueueClient('kept');
      await queue.create();
      await queue.sendMessage('persisted');
      await first.stop();
      assert.ok(readdirSync(dir).length > 0);

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
