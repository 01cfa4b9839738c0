import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { TableClient } from '@azure/data-tables';
import { rewrapEntity } from '../../../shared/rotation/entityRewrap';
import type { RewrapContext } from '../../../shared/rotation/blobRewrap';
import { EncryptedTableClient } from '../../../shared/tables/encryptedTableClient';
import { tv, properties, getProperty } from '../../../shared/tables/entityModel';
import { entityFromWire } from '../../../shared/tables/wireEntity';
import { toSdkEntity } from '../../../shared/tables/sdkEntity';
import { parseTableKeyMetadata } from '../../../shared/tables/tableKeyMetadata';
import type { KeyEncryptionKey } from '../../../shared/keys/kek';
import { startAzurite, type RunningAzurite } from '../../helpers/azurite';
import { vectorPath } from '../../helpers/vectors';
import { KEY_A, KEY_B, storageClients, tableName, testKeys, type StorageClients, type TestKeys } from './harness';

describe('rewrapEntity (Azurite)', () => {
  let azurite: RunningAzurite;
  let keys: TestKeys;
  let clients: StorageClients;
  let raw: TableClient;
  let table: string;

  before(async () => {
    azurite = await startAzurite();
    keys = await testKeys();
    clients = storageClients(azurite);
    table = tableName('rewrap');
    raw = clients.tableClient(table);
    await raw.createTable();
  });
  after(() => azurite?.stop());

  const writer = (protocol: '1.0' | '2.0'): EncryptedTableClient =>
    new EncryptedTableClient(raw, { kek: keys.a, resolver: keys.ring.resolver }, { protocol, allowV1: true });
  const reader = (): EncryptedTableClient =>
    new EncryptedTableClient(raw, { kek: keys.b, resolver: keys.onlyB.resolver }, { allowV1: true });
  const rotating = (target: KeyEncryptionKey = keys.b): EncryptedTableClient =>
    new EncryptedTableClient(raw, { kek: target, resolver: keys.ring.resolver });
  const context = (target: KeyEncryptionKey = keys.b): RewrapContext => ({
    resolver: keys.ring.resolver,
    target,
    sleep: async () => undefined,
  });

  async function rawEntity(pk: string, rk: string): Promise<Record<string, unknown>> {
    const { etag: _etag, timestamp: _ts, ...rest } = (await raw.getEntity(pk, rk)) as Record<string, unknown>;
    void _etag;
    void _ts;
    return rest;
  }

  for (const protocol of ['2.0', '1.0'] as const) {
    it(`re-wraps a protocol ${protocol} entity: only _ClientEncryptionMetadata1 changes, ciphertext untouched`, async () => {
      const rk = `p${protocol}`;
      await writer(protocol).insert(
        {
          partitionKey: 'pk',
          rowKey: rk,
          properties: properties([
            ['secret', tv.string(`s3cret ${protocol}`)],
            ['plain', tv.string('visible')],
            ['n', tv.int32(7)],
          ]),
        },
        { encrypt: ['secret'] },
      );
      const before = await rawEntity('pk', rk);
      const outcome = await rewrapEntity(rotating(), { partitionKey: 'pk', rowKey: rk }, context());
      assert.deepEqual(outcome, { kind: 'rewrapped', legacyV1: protocol === '1.0' });
      const after = await rawEntity('pk', rk);
      for (const name of Object.keys(before)) {
        if (name === '_ClientEncryptionMetadata1') continue;
        assert.deepEqual(after[name], before[name], `${name} unchanged`);
      }
      assert.deepEqual(Object.keys(after).sort(), Object.keys(before).sort());
      const m1 = parseTableKeyMetadata(String(after['_ClientEncryptionMetadata1']));
      const m1Before = parseTableKeyMetadata(String(before['_ClientEncryptionMetadata1']));
      assert.equal(m1.wrappedContentKey.keyId, KEY_B);
      assert.equal(m1.protocol, protocol);
      assert.deepEqual(m1.keyWrappingMetadata, m1Before.keyWrappingMetadata);
      if (m1.protocol === '1.0' && m1Before.protocol === '1.0') assert.ok(m1.entityIv.equals(m1Before.entityIv));
      const read = await reader().get('pk', rk);
      assert.deepEqual(
        getProperty(read.properties, 'secret'),
        tv.string(`s3cret ${protocol}`),
        'decrypts with key B alone',
      );
      assert.deepEqual(getProperty(read.properties, 'n'), tv.int32(7));
    });
  }

  it('re-wraps an entity written by the Python azure-cosmosdb-table SDK (legacy 1.0, RSA key)', async () => {
    const stored = JSON.parse(readFileSync(vectorPath('table', 'table-v1-rsa-1.stored.json'), 'utf8'));
    const entity = entityFromWire(stored);
    await raw.createEntity(toSdkEntity(entity));
    assert.equal(
      parseTableKeyMetadata(String((await rawEntity(entity.partitionKey, entity.rowKey))['_ClientEncryptionMetadata1']))
        .wrappedContentKey.keyId,
      'local:rsa-1',
    );
    const outcome = await rewrapEntity(
      rotating(),
      { partitionKey: entity.partitionKey, rowKey: entity.rowKey },
      context(),
    );
    assert.deepEqual(outcome, { kind: 'rewrapped', legacyV1: true });
    const read = await reader().get(entity.partitionKey, entity.rowKey);
    assert.deepEqual(getProperty(read.properties, 'Secret'), tv.string('top secret ü'));
    assert.equal(read.encryption?.legacyJavaLayout, false, 'still read as a .NET/Python entity');
  });

  it('counts an entity already under the target as re-wrapped without writing; a deleted one as gone', async () => {
    await new EncryptedTableClient(raw, { kek: keys.b, resolver: keys.ring.resolver }).insert(
      { partitionKey: 'pk', rowKey: 'current', properties: properties([['s', tv.string('x')]]) },
      { encrypt: ['s'] },
    );
    const etag = (await raw.getEntity('pk', 'current')).etag;
    assert.deepEqual(await rewrapEntity(rotating(), { partitionKey: 'pk', rowKey: 'current' }, context()), {
      kind: 'rewrapped',
      legacyV1: false,
    });
    assert.equal((await raw.getEntity('pk', 'current')).etag, etag);
    assert.deepEqual(await rewrapEntity(rotating(), { partitionKey: 'pk', rowKey: 'never-was' }, context()), {
      kind: 'gone',
    });
  });

  it('re-reads and retries when the entity changes between read and write, keeping the concurrent change', async () => {
    await writer('2.0').insert(
      { partitionKey: 'pk', rowKey: 'raced', properties: properties([['s', tv.string('one')]]) },
      { encrypt: ['s'] },
    );
    let raced = false;
    const racing: KeyEncryptionKey = {
      keyId: keys.b.keyId,
      defaultAlgorithm: keys.b.defaultAlgorithm,
      unwrapKey: (alg, w) => keys.b.unwrapKey(alg, w),
      wrapKey: async (alg, payload) => {
        if (!raced) {
          raced = true;
          // A concurrent writer replaces the entity (new content key, under A).
          await writer('2.0').upsert(
            { partitionKey: 'pk', rowKey: 'raced', properties: properties([['s', tv.string('two')]]) },
            { encrypt: ['s'] },
          );
        }
        return keys.b.wrapKey(alg, payload);
      },
    };
    assert.deepEqual(await rewrapEntity(rotating(racing), { partitionKey: 'pk', rowKey: 'raced' }, context(racing)), {
      kind: 'rewrapped',
      legacyV1: false,
    });
    const read = await reader().get('pk', 'raced');
    assert.deepEqual(
      getProperty(read.properties, 's'),
      tv.string('two'),
      'the concurrent write is kept and decrypts with B',
    );
  });

  it('records a key id that is not allowed, and an entity without encryption metadata', async () => {
    await writer('2.0').insert(
      { partitionKey: 'pk', rowKey: 'foreign', properties: properties([['s', tv.string('x')]]) },
      { encrypt: ['s'] },
    );
    const m1 = JSON.parse(String((await raw.getEntity('pk', 'foreign'))['_ClientEncryptionMetadata1']));
    assert.equal(m1.WrappedContentKey.KeyId, KEY_A);
    m1.WrappedContentKey.KeyId = 'local:unknown-key';
    await raw.updateEntity(
      { partitionKey: 'pk', rowKey: 'foreign', _ClientEncryptionMetadata1: JSON.stringify(m1) },
      'Merge',
    );
    const foreign = await rewrapEntity(rotating(), { partitionKey: 'pk', rowKey: 'foreign' }, context());
    assert.match(foreign.kind === 'failed' ? foreign.reason : '', /^KeyNotAllowed: /);

    await raw.createEntity({ partitionKey: 'pk', rowKey: 'plain', x: 'y' });
    const plain = await rewrapEntity(rotating(), { partitionKey: 'pk', rowKey: 'plain' }, context());
    assert.match(plain.kind === 'failed' ? plain.reason : '', /^NotEncrypted: /);
  });
});
