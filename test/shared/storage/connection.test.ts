/**
 * Storage clients from AzureWebJobsStorage, against a private Azurite: account-key and SAS connection strings
 * (including a form the JS SDKs' own parsers misread), plain-http tables (allowInsecureConnection), and the
 * identity-based form's endpoints and credentials (checked against a fake managed identity endpoint).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobServiceClient,
  SASProtocol,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
} from '@azure/storage-blob';
import { createStorageClients, createStorageCredential, type StorageClients } from '../../../shared/storage/connection';
import { readStorageSetting, type StorageSetting } from '../../../shared/config/storageSetting';
import { AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, startAzurite, type RunningAzurite } from '../../helpers/azurite';
import { startManagedIdentityEndpoint } from '../../helpers/managedIdentityEndpoint';
import { testCredential } from '../../helpers/keyVaultStandIn';
import { fixturePath } from '../../helpers/paths';

/**
 * An HTTPS server on loopback (test-only certificate) that records each request's path and Authorization header
 * and answers 403. Bearer tokens are only ever sent over TLS, so the identity-based form needs this to be seen.
 * Certificate checks are off in this test process while it runs (NODE_TLS_REJECT_UNAUTHORIZED=0).
 */
async function startTlsRecorder(): Promise<{
  url: string;
  requests: { path: string; authorization: string | undefined }[];
  close(): Promise<void>;
}> {
  const requests: { path: string; authorization: string | undefined }[] = [];
  const server = createHttpsServer(
    {
      key: readFileSync(fixturePath('tls', 'loopback-test.key')),
      cert: readFileSync(fixturePath('tls', 'loopback-test.crt')),
    },
    (req, res) => {
      requests.push({ path: req.url ?? '', authorization: req.headers.authorization });
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end();
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    async close() {
      if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function setting(env: Record<string, string>): StorageSetting {
  const result = readStorageSetting(env);
  assert.ok(result.ok, result.ok ? '' : result.problems.join('\n'));
  return result.value;
}

/** Writes and reads one blob, one queue message and one entity through the clients. */
async function roundTrip(clients: StorageClients): Promise<void> {
  const name = `t${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const container = clients.blob.getContainerClient(name);
  await container.create();
  await container.getBlockBlobClient('hello.txt').upload('hello', 5);
  assert.equal((await container.getBlobClient('hello.txt').downloadToBuffer()).toString(), 'hello');

  const queue = clients.queue.getQueueClient(name);
  await queue.create();
  await queue.sendMessage('message');
  const received = await queue.receiveMessages();
  assert.equal(received.receivedMessageItems[0]?.messageText, 'message');

  await clients.table.createTable(name);
  const table = clients.tableClient(name);
  await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 42 });
  assert.equal((await table.getEntity<{ value: number }>('p', 'r')).value, 42);
}

describe('storage clients from AzureWebJobsStorage', () => {
  let azurite: RunningAzurite;
  before(async () => {
    azurite = await startAzurite();
  });
  after(() => azurite?.stop());

  it('an account-key connection string with explicit http endpoints (Azurite)', async () => {
    await roundTrip(createStorageClients(setting({ AzureWebJobsStorage: azurite.connectionString })));
  });

  it('a .NET-valid connection string that the JS SDK itself would misread (no DefaultEndpointsProtocol)', async () => {
    const text =
      `AccountName=${AZURITE_ACCOUNT_NAME};AccountKey=${AZURITE_ACCOUNT_KEY};` +
      `BlobEndpoint=${azurite.blobEndpoint};QueueEndpoint=${azurite.queueEndpoint};TableEndpoint=${azurite.tableEndpoint}`;
    // The JS blob SDK takes a string without DefaultEndpointsProtocol for a SAS string and fails.
    assert.throws(() => BlobServiceClient.fromConnectionString(text), /SharedAccessSignature/);
    await roundTrip(createStorageClients(setting({ AzureWebJobsStorage: text })));
  });

  it('a SAS connection string', async () => {
    const sas = generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 3600_000),
        permissions: AccountSASPermissions.parse('rwdlacup'),
        resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
        services: AccountSASServices.parse('bqt').toString(),
        protocol: SASProtocol.HttpsAndHttp,
      },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT_NAME, AZURITE_ACCOUNT_KEY),
    ).toString();
    const text = `BlobEndpoint=${azurite.blobEndpoint};QueueEndpoint=${azurite.queueEndpoint};TableEndpoint=${azurite.tableEndpoint};SharedAccessSignature=${sas}`;
    const s = setting({ AzureWebJobsStorage: text });
    assert.ok(s.kind === 'connectionString' && s.auth.kind === 'sas');
    await roundTrip(createStorageClients(s));
  });

  it('tables over plain http need allowInsecureConnection, which is set only for http endpoints', async () => {
    const clients = createStorageClients(setting({ AzureWebJobsStorage: azurite.connectionString }));
    await clients.table.createTable(`ins${randomUUID().replace(/-/g, '').slice(0, 10)}`); // would throw without it
    const https = createStorageClients(
      setting({
        AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${AZURITE_ACCOUNT_KEY}`,
      }),
    );
    assert.equal(https.table.url, 'https://acct.table.core.windows.net');
  });

  it('identity-based settings: clients for the configured endpoints', () => {
    const clients = createStorageClients(
      setting({
        AzureWebJobsStorage__blobServiceUri: 'https://acct.blob.core.windows.net',
        AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
        AzureWebJobsStorage__tableServiceUri: 'https://acct.table.core.windows.net',
        AzureWebJobsStorage__credential: 'managedidentity',
        AzureWebJobsStorage__clientId: '8f0e6c1e-2b2c-4e5c-9a47-3c1d2e6f7a8b',
      }),
      { credential: testCredential().credential },
    );
    assert.equal(clients.blob.url.replace(/\/$/, ''), 'https://acct.blob.core.windows.net');
    assert.equal(clients.queue.url.replace(/\/$/, ''), 'https://acct.queue.core.windows.net');
    assert.equal(clients.table.url, 'https://acct.table.core.windows.net');
    assert.equal(clients.tableClient('orders').tableName, 'orders');
  });

  describe('identity credentials ask the managed identity endpoint for the configured identity', () => {
    let mi: Awaited<ReturnType<typeof startManagedIdentityEndpoint>>;
    before(async () => {
      mi = await startManagedIdentityEndpoint();
    });
    after(() => mi.close());

    const clientId = '8f0e6c1e-2b2c-4e5c-9a47-3c1d2e6f7a8b';
    const resourceId =
      '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id';

    it('user-assigned by client id (AzureWebJobsStorage__credential=managedidentity, __clientId)', async () => {
      const s = setting({
        AzureWebJobsStorage__accountName: 'acct',
        AzureWebJobsStorage__credential: 'managedidentity',
        AzureWebJobsStorage__clientId: clientId,
      });
      assert.ok(s.kind === 'identity');
      const token = await createStorageCredential(s.credential).getToken('https://storage.azure.com/.default');
      assert.equal(token?.token, 'fake-managed-identity-token');
      const request = mi.requests.at(-1);
      assert.equal(request?.clientId, clientId);
      assert.equal(request?.resource, 'https://storage.azure.com');
      assert.ok(request?.headerOk);
    });

    it('user-assigned by resource id, and system-assigned', async () => {
      const byResource = setting({
        AzureWebJobsStorage__accountName: 'acct',
        AzureWebJobsStorage__credential: 'managedidentity',
        AzureWebJobsStorage__managedIdentityResourceId: resourceId,
      });
      assert.ok(byResource.kind === 'identity');
      await createStorageCredential(byResource.credential).getToken('https://storage.azure.com/.default');
      assert.equal(mi.requests.at(-1)?.resourceId, resourceId);
      assert.equal(mi.requests.at(-1)?.clientId, null);

      const system = setting({
        AzureWebJobsStorage__accountName: 'acct',
        AzureWebJobsStorage__credential: 'managedidentity',
      });
      assert.ok(system.kind === 'identity');
      await createStorageCredential(system.credential).getToken('https://storage.azure.com/.default');
      assert.equal(mi.requests.at(-1)?.clientId, null);
      assert.equal(mi.requests.at(-1)?.resourceId, null);
    });

    it('end to end: the managed identity token of the configured client id reaches the configured endpoints', async () => {
      const storage = await startTlsRecorder();
      try {
        const s = setting({
          AzureWebJobsStorage__blobServiceUri: `${storage.url}/blob`,
          AzureWebJobsStorage__queueServiceUri: `${storage.url}/queue`,
          AzureWebJobsStorage__tableServiceUri: `${storage.url}/table`,
          AzureWebJobsStorage__credential: 'managedidentity',
          AzureWebJobsStorage__clientId: clientId,
        });
        const noRetry = { retryOptions: { maxTries: 1 } };
        const clients = createStorageClients(s, {
          blob: noRetry,
          queue: noRetry,
          table: { retryOptions: { maxRetries: 0 } },
        });
        await clients.blob.getProperties().catch(() => undefined);
        await clients.queue.getProperties().catch(() => undefined);
        await clients.table
          .listTables()
          .next()
          .catch(() => undefined);
        assert.deepEqual(
          storage.requests.map((r) => r.path.split('/')[1]),
          ['blob', 'queue', 'table'],
        );
        for (const r of storage.requests) assert.equal(r.authorization, 'Bearer fake-managed-identity-token');
        assert.ok(mi.requests.some((r) => r.clientId === clientId && r.resource === 'https://storage.azure.com'));
      } finally {
        await storage.close();
      }
    });
  });
});
