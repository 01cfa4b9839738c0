import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCseError } from '../../shared/errors';
import { generateDevelopmentKeySet } from '../../shared/keys/localKeys';
import { buildAppServices } from '../../shared/appServices';
import { azuriteConnectionString } from '../helpers/azurite';

describe('appServices', () => {
  const connection = azuriteConnectionString({
    blob: 'http://127.0.0.1:1/devstoreaccount1',
    queue: 'http://127.0.0.1:1/devstoreaccount1',
    table: 'http://127.0.0.1:1/devstoreaccount1',
  });

  it('builds config, key ring, storage clients and the blob store from settings, without network calls', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cse-appservices-'));
    try {
      const keys = join(dir, 'keys.json');
      writeFileSync(keys, generateDevelopmentKeySet('local:app'));
      const services = await buildAppServices({
        AzureWebJobsStorage: connection,
        CSE_KEY_ID: 'local:app',
        CSE_LOCAL_KEYS: keys,
        CSE_CONTAINERS: 'docs,encrypted,azure-webjobs-hosts',
        CSE_ALLOW_V1: 'true',
      });
      assert.equal(services.config.allowV1, true);
      assert.equal((await services.keyRing.activeKey()).keyId, 'local:app');
      assert.equal(services.blobService, services.storage.blob);
      assert.equal(services.blobService.url, 'http://127.0.0.1:1/devstoreaccount1');
      assert.equal(services.containers.isAllowed('docs'), true);
      assert.equal(services.containers.isAllowed('other'), false);
      // Even when listed, the host's own containers are never served.
      assert.equal(services.containers.isAllowed('azure-webjobs-hosts'), false);
      assert.throws(
        () => services.blobStore.container('other'),
        (e) => isCseError(e, 'ContainerNotAllowed'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports unusable settings as one ConfigurationError', async () => {
    await assert.rejects(buildAppServices({ AzureWebJobsStorage: connection, CSE_KEY_ID: 'local:missing' }), (e) =>
      isCseError(e, 'ConfigurationError'),
    );
  });
});
