/**
 * AzureWebJobsStorage read the way the Functions host reads it: connection strings (.NET rules) and the
 * identity-based `AzureWebJobsStorage__*` form, with strict errors where the host would silently pick or ignore.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readStorageSetting, type StorageSetting } from '../../../shared/config/storageSetting';

const KEY = Buffer.alloc(64, 1).toString('base64');
const CLIENT_ID = '8f0e6c1e-2b2c-4e5c-9a47-3c1d2e6f7a8b';
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';

function ok(env: Record<string, string | undefined>): StorageSetting {
  const result = readStorageSetting(env);
  assert.ok(result.ok, result.ok ? '' : result.problems.join('\n'));
  return result.value;
}

function problems(env: Record<string, string | undefined>): string {
  const result = readStorageSetting(env);
  assert.ok(!result.ok, 'expected problems');
  return result.problems.join('\n');
}

describe('AzureWebJobsStorage connection strings', () => {
  it('derives endpoints from DefaultEndpointsProtocol, AccountName and EndpointSuffix', () => {
    const s = ok({
      AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${KEY};EndpointSuffix=core.windows.net`,
    });
    assert.equal(s.kind, 'connectionString');
    assert.deepEqual(s.endpoints, {
      blob: 'https://acct.blob.core.windows.net',
      queue: 'https://acct.queue.core.windows.net',
      table: 'https://acct.table.core.windows.net',
    });
    assert.ok(s.kind === 'connectionString' && s.auth.kind === 'accountKey' && s.auth.accountKey.reveal() === KEY);
    assert.equal(s.kind === 'connectionString' && s.accountName, 'acct');
  });

  it('defaults EndpointSuffix to core.windows.net and honours sovereign suffixes', () => {
    assert.equal(
      ok({ AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=a1b;AccountKey=${KEY}` }).endpoints.queue,
      'https://a1b.queue.core.windows.net',
    );
    assert.equal(
      ok({
        AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=a1b;AccountKey=${KEY};EndpointSuffix=core.chinacloudapi.cn`,
      }).endpoints.table,
      'https://a1b.table.core.chinacloudapi.cn',
    );
  });

  it('accepts explicit endpoints (Azurite), with or without DefaultEndpointsProtocol', () => {
    const s = ok({
      AzureWebJobsStorage: `AccountName=devstoreaccount1;AccountKey=${KEY};BlobEndpoint=http://127.0.0.1:40001/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:40002/devstoreaccount1;TableEndpoint=http://127.0.0.1:40003/devstoreaccount1`,
    });
    assert.deepEqual(s.endpoints, {
      blob: 'http://127.0.0.1:40001/devstoreaccount1',
      queue: 'http://127.0.0.1:40002/devstoreaccount1',
      table: 'http://127.0.0.1:40003/devstoreaccount1',
    });
  });

  it('UseDevelopmentStorage=true means Azurite on its default ports', () => {
    const s = ok({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
    assert.ok(s.kind === 'connectionString' && s.development && s.accountName === 'devstoreaccount1');
    assert.equal(s.endpoints.table, 'http://127.0.0.1:10002/devstoreaccount1');
  });

  it('SAS connection strings', () => {
    const s = ok({
      AzureWebJobsStorage:
        'BlobEndpoint=https://acct.blob.core.windows.net/;QueueEndpoint=https://acct.queue.core.windows.net/;TableEndpoint=https://acct.table.core.windows.net/;SharedAccessSignature=?sv=2022-11-02&ss=bqt&sig=abc%3D',
    });
    assert.ok(s.kind === 'connectionString' && s.auth.kind === 'sas');
    assert.equal(
      s.kind === 'connectionString' && s.auth.kind === 'sas' && s.auth.sas.reveal(),
      'sv=2022-11-02&ss=bqt&sig=abc%3D',
    );
    assert.equal(s.kind === 'connectionString' && s.accountName, 'acct');
  });

  it('refuses what the host would misread or fail on, saying what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['not a connection string', /not a connection string/],
      [`accountname=acct;AccountKey=${KEY}`, /"accountname" must be written "AccountName"/],
      [`AccountName=acct;AccountKey=${KEY};Blobendpoint2=x`, /unknown connection string key "Blobendpoint2"/],
      [`DefaultEndpointsProtocol=https;AccountName=acct;AccountName=b;AccountKey=${KEY}`, /AccountName appears twice/],
      [
        `DefaultEndpointsProtocol=ftp;AccountName=acct;AccountKey=${KEY}`,
        /DefaultEndpointsProtocol must be https or http/,
      ],
      ['DefaultEndpointsProtocol=https;AccountName=acct', /no AccountKey or SharedAccessSignature/],
      [
        `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${KEY};SharedAccessSignature=sv=1`,
        /either AccountKey or SharedAccessSignature, not both/,
      ],
      [
        `AccountName=acct;AccountKey=${KEY};BlobEndpoint=https://acct.blob.core.windows.net`,
        /no queue endpoint[\s\S]*no table endpoint/,
      ],
      ['DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=not base64!', /AccountKey is not base64/],
      ['UseDevelopmentStorage=false', /UseDevelopmentStorage must be "true"/],
      ['UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://x', /unknown connection string key/],
      [
        `AccountName=acct;AccountKey=${KEY};BlobEndpoint=not a url;QueueEndpoint=https://q;TableEndpoint=https://t`,
        /BlobEndpoint is not an absolute URL/,
      ],
    ];
    for (const [text, pattern] of cases) {
      const message = problems({ AzureWebJobsStorage: text });
      assert.match(message, pattern, text);
      assert.match(message, /^AzureWebJobsStorage/);
      assert.ok(!message.includes(KEY), 'the account key is never repeated');
    }
  });
});

describe('AzureWebJobsStorage identity-based form', () => {
  it('__accountName gives the three public endpoints; default credential', () => {
    const s = ok({ AzureWebJobsStorage__accountName: 'acct' });
    assert.deepEqual(s, {
      kind: 'identity',
      endpoints: {
        blob: 'https://acct.blob.core.windows.net',
        queue: 'https://acct.queue.core.windows.net',
        table: 'https://acct.table.core.windows.net',
      },
      credential: { kind: 'default' },
    });
  });

  it('service URIs with a user-assigned managed identity (the Bicep form)', () => {
    const s = ok({
      AzureWebJobsStorage__blobServiceUri: 'https://acct.blob.core.windows.net/',
      AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
      AzureWebJobsStorage__tableServiceUri: 'https://acct.table.core.windows.net',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: CLIENT_ID,
    });
    assert.deepEqual(s, {
      kind: 'identity',
      endpoints: {
        blob: 'https://acct.blob.core.windows.net',
        queue: 'https://acct.queue.core.windows.net',
        table: 'https://acct.table.core.windows.net',
      },
      credential: { kind: 'managedIdentity', clientId: CLIENT_ID },
    });
  });

  it('matches names case-insensitively and accepts ":" as the separator, like .NET configuration', () => {
    const s = ok({
      AZUREWEBJOBSSTORAGE__ACCOUNTNAME: 'acct',
      'AzureWebJobsStorage:Credential': 'ManagedIdentity',
    });
    assert.equal(s.endpoints.blob, 'https://acct.blob.core.windows.net');
    assert.deepEqual(s.kind === 'identity' && s.credential, { kind: 'managedIdentity' });
  });

  it('__serviceUri serves blob and queue (the host falls back to it), tables need __tableServiceUri', () => {
    const s = ok({
      AzureWebJobsStorage__serviceUri: 'https://acct.blob.core.windows.net',
      AzureWebJobsStorage__tableServiceUri: 'https://acct.table.core.windows.net',
    });
    assert.equal(s.endpoints.queue, 'https://acct.blob.core.windows.net');
    assert.match(
      problems({ AzureWebJobsStorage__blobServiceUri: 'https://acct.blob.core.windows.net' }),
      /__queueServiceUri is missing[\s\S]*__tableServiceUri is missing/,
    );
  });

  it('credentials: managed identity by resource id or object id, service principal, DefaultAzureCredential options', () => {
    const rid =
      '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id';
    assert.deepEqual(
      (
        ok({
          AzureWebJobsStorage__accountName: 'acct',
          AzureWebJobsStorage__credential: 'managedidentity',
          AzureWebJobsStorage__managedIdentityResourceId: rid,
        }) as { credential: unknown }
      ).credential,
      { kind: 'managedIdentity', resourceId: rid },
    );
    assert.deepEqual(
      (
        ok({
          AzureWebJobsStorage__accountName: 'acct',
          AzureWebJobsStorage__credential: 'managedidentity',
          AzureWebJobsStorage__managedIdentityObjectId: CLIENT_ID,
        }) as { credential: unknown }
      ).credential,
      { kind: 'managedIdentity', objectId: CLIENT_ID },
    );
    const sp = ok({
      AzureWebJobsStorage__accountName: 'acct',
      AzureWebJobsStorage__tenantId: TENANT_ID,
      AzureWebJobsStorage__clientId: CLIENT_ID,
      AzureWebJobsStorage__clientSecret: 'shh-secret',
    });
    assert.ok(
      sp.kind === 'identity' &&
        sp.credential.kind === 'clientSecret' &&
        sp.credential.clientSecret.reveal() === 'shh-secret',
    );
    assert.ok(!JSON.stringify(sp).includes('shh-secret'));
    assert.deepEqual(
      (
        ok({ AzureWebJobsStorage__accountName: 'acct', AzureWebJobsStorage__clientId: CLIENT_ID }) as {
          credential: unknown;
        }
      ).credential,
      {
        kind: 'default',
        managedIdentityClientId: CLIENT_ID,
      },
    );
  });

  it('refuses contradictory, unknown or unsupported settings', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        {
          AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${KEY}`,
          AzureWebJobsStorage__accountName: 'acct',
        },
        /a connection string is set, and so is AzureWebJobsStorage__accountName/,
      ],
      [
        {
          AzureWebJobsStorage__accountName: 'acct',
          AzureWebJobsStorage__blobServiceUri: 'https://acct.blob.core.windows.net',
        },
        /__accountName: set together with AzureWebJobsStorage__blobServiceUri/,
      ],
      [{ AzureWebJobsStorage__accountName: 'Acct_1' }, /not a storage account name/],
      [
        { AzureWebJobsStorage__accountName: 'acct', AzureWebJobsStorage__blobServiceUrl: 'https://x' },
        /AzureWebJobsStorage__blobServiceUrl: unknown setting/,
      ],
      [
        { AzureWebJobsStorage__accountName: 'acct', AzureWebJobsStorage__clientCertificate: 'ABCD' },
        /certificate credentials are not supported/,
      ],
      [
        { AzureWebJobsStorage__accountName: 'acct', AzureWebJobsStorage__credential: 'workloadidentity' },
        /"workloadidentity" is not supported; use "managedidentity"/,
      ],
      [
        {
          AzureWebJobsStorage__accountName: 'acct',
          AzureWebJobsStorage__credential: 'managedidentity',
          AzureWebJobsStorage__clientId: CLIENT_ID,
          AzureWebJobsStorage__managedIdentityObjectId: CLIENT_ID,
        },
        /give only one identity/,
      ],
      [
        {
          AzureWebJobsStorage__accountName: 'acct',
          AzureWebJobsStorage__credential: 'managedidentity',
          AzureWebJobsStorage__clientSecret: 'x',
        },
        /__clientSecret: not used with/,
      ],
      [
        { AzureWebJobsStorage__accountName: 'acct', AzureWebJobsStorage__clientId: 'app-identity' },
        /__clientId: "app-identity" is not a GUID/,
      ],
      [
        { AzureWebJobsStorage__accountName: 'acct', AzureWebJobsStorage__clientSecret: 'x' },
        /also needs AzureWebJobsStorage__tenantId and __clientId/,
      ],
      [
        {
          AzureWebJobsStorage__blobServiceUri: 'http://acct.blob.core.windows.net',
          AzureWebJobsStorage__queueServiceUri: 'https://q.example',
          AzureWebJobsStorage__tableServiceUri: 'https://t.example',
        },
        /__blobServiceUri: .* must use https/,
      ],
      [
        {
          AzureWebJobsStorage__blobServiceUri: 'https://acct.blob.core.windows.net/?sv=1&sig=x',
          AzureWebJobsStorage__queueServiceUri: 'https://q.example',
          AzureWebJobsStorage__tableServiceUri: 'https://t.example',
        },
        /must not carry user info, a query or a fragment/,
      ],
      [
        {
          AzureWebJobsStorage__managedIdentityResourceId: 'not-a-resource-id',
          AzureWebJobsStorage__accountName: 'acct',
        },
        /not a user-assigned identity resource id/,
      ],
      [
        { AzureWebJobsStorage__accountName: 'acct', azurewebjobsstorage__accountname: 'other' },
        /set twice with different values/,
      ],
    ];
    for (const [env, pattern] of cases) assert.match(problems(env), pattern, JSON.stringify(env));
  });

  it('nothing set at all', () => {
    assert.match(
      problems({ PATH: '/bin' }),
      /AzureWebJobsStorage is not set: give a connection string, or the identity-based form/,
    );
  });

  it('does not mistake other settings that share the prefix', () => {
    const s = ok({
      AzureWebJobsStorage__accountName: 'acct',
      AzureWebJobsStorageTimeout: '5',
      AzureWebJobsDashboard: 'x',
    });
    assert.equal(s.kind, 'identity');
  });
});
