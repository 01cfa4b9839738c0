/** The scheduled check against Azurite: what counts as "under another key", scope, budget. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { probeForStaleObjects, type ProbeDeps } from '../../../shared/rotation/staleProbe';
import { properties, tv } from '../../../shared/tables/entityModel';
import { startAzurite, type RunningAzurite } from '../../helpers/azurite';
import {
  KEY_A,
  KEY_B,
  VECTOR_OCT,
  containerName,
  entityClient,
  putEncryptedBlob,
  putVectorBlob,
  storageClients,
  tableName,
  testKeys,
  type StorageClients,
  type TestKeys,
} from './harness';

describe('probeForStaleObjects (Azurite)', () => {
  let azurite: RunningAzurite;
  let clients: StorageClients;
  let keys: TestKeys;

  before(async () => {
    azurite = await startAzurite();
    clients = storageClients(azurite);
    keys = await testKeys();
  });
  after(() => azurite?.stop());

  const entity = (rowKey: string) => ({ partitionKey: 'p', rowKey, properties: properties([['v', tv.string('s')]]) });

  function deps(containers: string[], tables: string[], overrides: Partial<ProbeDeps> = {}): ProbeDeps {
    return {
      blobService: clients.blobService,
      tableService: clients.tableService,
      tableClient: clients.tableClient,
      isContainerAllowed: (n) => containers.includes(n),
      isTableAllowed: (n) => tables.includes(n),
      isKeyAllowed: (k) => k.startsWith('local:'),
      ...overrides,
    };
  }

  it('finds nothing when every blob and entity is under the target, and counts what it looked at', async () => {
    const c = clients.blobService.getContainerClient(containerName('probe-cur'));
    await c.create();
    for (let i = 0; i < 7; i++) await putEncryptedBlob(c, `b${i}`, Buffer.from(`x${i}`), keys.b);
    await c.getBlockBlobClient('plain').upload('p', 1);
    const t = tableName('probecur');
    await clients.tableService.createTable(t);
    const table = entityClient(clients, t, { kek: keys.b, ring: keys.ring });
    for (let i = 0; i < 3; i++) await table.insert(entity(`r${i}`), { encrypt: ['v'] });
    const result = await probeForStaleObjects(deps([c.containerName], [t]), KEY_B, { reencryptV1: false });
    assert.deepEqual(result, { kind: 'allCurrent', scanned: 10 });
  });

  it('stops at the first object under another allowed key; ignores out-of-scope containers, disallowed and unreadable key ids', async () => {
    const outOfScope = clients.blobService.getContainerClient(containerName('probe-out'));
    await outOfScope.create();
    await putEncryptedBlob(outOfScope, 'old', Buffer.from('o'), keys.a);

    const c = clients.blobService.getContainerClient(containerName('probe-mixed'));
    await c.create();
    await putEncryptedBlob(c, 'a-current', Buffer.from('b'), keys.b);
    await putEncryptedBlob(c, 'b-foreign', Buffer.from('f'), keys.a);
    const foreign = c.getBlobClient('b-foreign');
    const doc = JSON.parse((await foreign.getProperties()).metadata?.['encryptiondata'] ?? '');
    doc.WrappedContentKey.KeyId = 'https://evil.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef';
    await foreign.setMetadata({ encryptiondata: JSON.stringify(doc) });
    await c.getBlockBlobClient('c-broken').upload('x', 1, { metadata: { encryptiondata: '{broken' } });
    const none = await probeForStaleObjects(deps([c.containerName], [], { isKeyAllowed: (k) => k === KEY_B }), KEY_B, {
      reencryptV1: false,
    });
    assert.equal(none.kind, 'allCurrent', 'a disallowed key id is no reason to rotate');

    await putEncryptedBlob(c, 'd-old', Buffer.from('o'), keys.a);
    const found = await probeForStaleObjects(deps([c.containerName], []), KEY_B, { reencryptV1: false });
    assert.equal(found.kind, 'found');
    assert.equal(found.kind === 'found' && found.object, `blob:${c.containerName}/d-old`);
    assert.equal(found.kind === 'found' && found.keyId, KEY_A);
  });

  it('finds entities under another key, and v1.0 blobs under the target only when re-encryption is on', async () => {
    const t = tableName('probeold');
    await clients.tableService.createTable(t);
    const table = entityClient(clients, t, { kek: keys.a, ring: keys.ring });
    await table.insert(entity('r'), { encrypt: ['v'] });
    const found = await probeForStaleObjects(deps([], [t]), KEY_B, { reencryptV1: false });
    assert.equal(found.kind === 'found' && found.object, `entity:${t}(PartitionKey='p',RowKey='r')`);

    const c = clients.blobService.getContainerClient(containerName('probe-v1'));
    await c.create();
    await putVectorBlob(c, 'v1', 'blob-v1-oct-31'); // under local:kek-1
    assert.equal(
      (await probeForStaleObjects(deps([c.containerName], []), VECTOR_OCT, { reencryptV1: false })).kind,
      'allCurrent',
    );
    const v1 = await probeForStaleObjects(deps([c.containerName], []), VECTOR_OCT, { reencryptV1: true });
    assert.equal(v1.kind === 'found' && v1.object, `blob:${c.containerName}/v1`);
  });

  it('answers undecided when its time budget runs out before it is done, not when it finished in time', async () => {
    const c1 = clients.blobService.getContainerClient(containerName('probe-budget'));
    const c2 = clients.blobService.getContainerClient(containerName('probe-budget'));
    for (const c of [c1, c2]) {
      await c.create();
      await putEncryptedBlob(c, 'x', Buffer.from('b'), keys.b);
    }
    const clock = (): (() => number) => {
      let t = 0;
      return () => (t += 1000);
    };
    const both = deps([c1.containerName, c2.containerName], []);
    const undecided = await probeForStaleObjects({ ...both, now: clock() }, KEY_B, {
      reencryptV1: false,
      budgetMs: 2500,
    });
    assert.deepEqual(undecided, { kind: 'undecided', scanned: 1 });
    const done = await probeForStaleObjects({ ...both, now: clock() }, KEY_B, { reencryptV1: false, budgetMs: 4500 });
    assert.deepEqual(done, { kind: 'allCurrent', scanned: 2 });
  });
});
