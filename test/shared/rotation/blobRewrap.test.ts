import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerClient } from '@azure/storage-blob';
import { CseError } from '../../../shared/errors';
import type { KeyEncryptionKey, KeyResolver } from '../../../shared/keys/kek';
import { parseEncryptionData } from '../../../shared/crypto/encryptionData';
import { rewrapBlob, sameEtag, type BlobWorkEntry, type RewrapContext } from '../../../shared/rotation/blobRewrap';
import { startAzurite, type RunningAzurite } from '../../helpers/azurite';
import { loadManifest, patternPlaintext } from '../../helpers/vectors';
import {
  KEY_A,
  KEY_B,
  containerName,
  putEncryptedBlob,
  putVectorBlob,
  readBlob,
  RecordingHttpClient,
  sha256,
  storageClients,
  testKeys,
  type TestKeys,
} from './harness';

describe('rewrapBlob (Azurite)', () => {
  let azurite: RunningAzurite;
  let keys: TestKeys;
  let container: ContainerClient;
  const noWait = async (): Promise<void> => undefined;

  before(async () => {
    azurite = await startAzurite();
    keys = await testKeys();
    container = storageClients(azurite).blobService.getContainerClient(containerName('rewrap'));
    await container.create();
  });
  after(() => azurite?.stop());

  const context = (overrides: Partial<RewrapContext> = {}): RewrapContext => ({
    resolver: keys.ring.resolver,
    target: keys.b,
    sleep: noWait,
    ...overrides,
  });

  /** The work entry the sweep would make: ETag and mixed-case names from a listing. */
  async function listedEntry(name: string): Promise<BlobWorkEntry> {
    for await (const item of container.listBlobsFlat({ prefix: name, includeMetadata: true })) {
      if (item.name !== name) continue;
      const names = Object.keys(item.metadata ?? {}).filter((n) => n !== n.toLowerCase());
      return { name, etag: item.properties.etag ?? '', ...(names.length ? { mixedCaseNames: names } : {}) };
    }
    throw new Error(`${name} not listed`);
  }

  async function listedMetadata(name: string): Promise<Record<string, string>> {
    for await (const item of container.listBlobsFlat({ prefix: name, includeMetadata: true })) {
      if (item.name === name) return item.metadata ?? {};
    }
    throw new Error(`${name} not listed`);
  }

  it('re-wraps a v2.0 blob: only WrappedContentKey changes; content, headers and other metadata (with their case) stay', async () => {
    const plaintext = patternPlaintext(70_000);
    await putEncryptedBlob(container, 'dir/one.bin', plaintext, keys.a, {
      metadata: { MyKey: 'Mixed', plain: 'lower', Another_One: 'x y' },
      contentType: 'application/x-test',
      cacheControl: 'max-age=60',
      contentDisposition: 'attachment; filename="one.bin"',
      contentLanguage: 'fr',
      contentEncoding: 'identity',
    });
    await container.getBlobClient('dir/one.bin').setTags({ project: 'rotation', stage: 'test' });
    const before = await readBlob(container, 'dir/one.bin', keys.ring);
    const propsBefore = await container.getBlobClient('dir/one.bin').getProperties();
    const docBefore = parseEncryptionData(before.metadata['encryptiondata'] ?? '');

    const recorder = new RecordingHttpClient();
    const recorded = storageClients(azurite, recorder).blobService.getContainerClient(container.containerName);
    const outcome = await rewrapBlob(recorded, await listedEntry('dir/one.bin'), context());
    assert.deepEqual(outcome, { kind: 'rewrapped', legacyV1: false });
    assert.deepEqual(
      recorder.requests.map((r) => r.split(' ')[0]),
      ['HEAD', 'PUT'],
      'an unchanged blob costs Get Properties + Set Metadata only (its listed ETag matches, quotes aside)',
    );

    const afterRead = await readBlob(container, 'dir/one.bin', keys.onlyB);
    assert.equal(afterRead.keyId, KEY_B);
    assert.equal(sha256(afterRead.stored), sha256(before.stored), 'stored bytes unchanged');
    assert.ok(afterRead.plaintext.equals(plaintext), 'decrypts with key B alone');
    const docAfter = parseEncryptionData(afterRead.metadata['encryptiondata'] ?? '');
    assert.equal(docAfter.protocol, '2.0');
    assert.deepEqual(docAfter.keyWrappingMetadata, docBefore.keyWrappingMetadata);
    assert.deepEqual(
      { ...docAfter, wrappedContentKey: undefined },
      { ...docBefore, wrappedContentKey: undefined },
      'everything but WrappedContentKey is as before',
    );
    assert.equal(docAfter.wrappedContentKey.algorithm, 'A256KW');

    const listed = await listedMetadata('dir/one.bin');
    assert.deepEqual(
      Object.entries(listed)
        .filter(([n]) => n !== 'encryptiondata')
        .sort(),
      [
        ['Another_One', 'x y'],
        ['MyKey', 'Mixed'],
        ['plain', 'lower'],
      ],
      'user metadata kept, names in their original case',
    );
    const propsAfter = await container.getBlobClient('dir/one.bin').getProperties();
    for (const p of [
      'contentType',
      'cacheControl',
      'contentDisposition',
      'contentLanguage',
      'contentEncoding',
      'contentLength',
      'blobType',
      'accessTier',
    ] as const) {
      assert.deepEqual(propsAfter[p], propsBefore[p], p);
    }
    assert.deepEqual(propsAfter.contentMD5, propsBefore.contentMD5);
    assert.deepEqual((await container.getBlobClient('dir/one.bin').getTags()).tags, {
      project: 'rotation',
      stage: 'test',
    });
    assert.notEqual(propsAfter.etag, propsBefore.etag);
  });

  it('re-wraps blobs written by the official Python SDK: v1.0 and v2.0, A256KW and RSA-OAEP', async () => {
    const manifest = loadManifest();
    for (const id of ['blob-v1-oct-31', 'blob-v1-rsa-31', 'blob-v2-rsa-31', 'blob-v2-oct-4194309', 'blob-v1-oct-0']) {
      const vector = manifest.blob.find((v) => v.id === id);
      assert.ok(vector, id);
      const stored = await putVectorBlob(container, `py/${id}`, id);
      const outcome = await rewrapBlob(container, await listedEntry(`py/${id}`), context());
      assert.deepEqual(outcome, { kind: 'rewrapped', legacyV1: vector.protocol === '1.0' }, id);
      const read = await readBlob(container, `py/${id}`, keys.onlyB);
      assert.equal(read.keyId, KEY_B);
      assert.equal(sha256(read.stored), sha256(stored), `${id}: stored bytes unchanged`);
      assert.equal(sha256(read.plaintext), vector.plaintext.sha256, `${id}: decrypts with key B alone`);
      assert.equal(parseEncryptionData(read.metadata['encryptiondata'] ?? '').protocol, vector.protocol);
    }
  });

  it('keeps the 2.1 prefix of a Java-style v2.1 blob', async () => {
    const manifest = loadManifest();
    const vector = manifest.blob.find((v) => v.id === 'blob-v2-oct-31');
    assert.ok(vector);
    const stored = await putVectorBlob(container, 'v21', vector.id);
    // Turn it into a 2.1 document: same content, the key wrapped with the "2.1" prefix under key A.
    const payload = Buffer.alloc(40);
    payload.write('2.1', 0, 'ascii');
    Buffer.from(vector.cek_hex, 'hex').copy(payload, 8);
    const doc = JSON.parse((await readBlob(container, 'v21', keys.ring)).metadata['encryptiondata'] ?? '');
    doc.EncryptionAgent.Protocol = '2.1';
    doc.WrappedContentKey = {
      KeyId: KEY_A,
      EncryptedKey: (await keys.a.wrapKey('A256KW', payload)).toString('base64'),
      Algorithm: 'A256KW',
    };
    await container.getBlobClient('v21').setMetadata({ encryptiondata: JSON.stringify(doc) });

    assert.deepEqual(await rewrapBlob(container, await listedEntry('v21'), context()), {
      kind: 'rewrapped',
      legacyV1: false,
    });
    const read = await readBlob(container, 'v21', keys.onlyB);
    assert.equal(parseEncryptionData(read.metadata['encryptiondata'] ?? '').protocol, '2.1');
    assert.equal(sha256(read.plaintext), vector.plaintext.sha256);
    assert.equal(sha256(read.stored), sha256(stored));
    const unwrapped = await keys.b.unwrapKey(
      'A256KW',
      parseEncryptionData(read.metadata['encryptiondata'] ?? '').wrappedContentKey.encryptedKey,
    );
    assert.equal(unwrapped.subarray(0, 8).toString('latin1'), '2.1\0\0\0\0\0');
  });

  it('counts a blob already under the target key as re-wrapped without writing it', async () => {
    await putEncryptedBlob(container, 'current', Buffer.from('x'), keys.b);
    const etag = (await container.getBlobClient('current').getProperties()).etag;
    assert.deepEqual(await rewrapBlob(container, await listedEntry('current'), context()), {
      kind: 'rewrapped',
      legacyV1: false,
    });
    assert.equal((await container.getBlobClient('current').getProperties()).etag, etag);
  });

  it('loses no concurrent metadata update: a write between read and write (412) is re-read and kept', async () => {
    await putEncryptedBlob(container, 'raced', Buffer.from('raced content'), keys.a, { metadata: { Owner: 'alice' } });
    const entry = await listedEntry('raced');
    let raced = 0;
    const racingTarget: KeyEncryptionKey = {
      keyId: keys.b.keyId,
      defaultAlgorithm: keys.b.defaultAlgorithm,
      unwrapKey: (alg, wrapped) => keys.b.unwrapKey(alg, wrapped),
      wrapKey: async (alg, payload) => {
        if (raced < 2) {
          // Someone edits the metadata (keeping encryptiondata) while we re-wrap: twice, with a new mixed-case name.
          raced++;
          const blob = container.getBlobClient('raced');
          const current = await blob.getProperties();
          await blob.setMetadata({
            encryptiondata: current.metadata?.['encryptiondata'] ?? '',
            Owner: 'bob',
            NewTag: `v${raced}`,
          });
        }
        return keys.b.wrapKey(alg, payload);
      },
    };
    assert.deepEqual(await rewrapBlob(container, entry, context({ target: racingTarget })), {
      kind: 'rewrapped',
      legacyV1: false,
    });
    assert.equal(raced, 2);
    const listed = await listedMetadata('raced');
    assert.equal(listed['Owner'], 'bob');
    assert.equal(listed['NewTag'], 'v2', 'the concurrent update survives, with its case');
    assert.equal((await readBlob(container, 'raced', keys.onlyB)).plaintext.toString(), 'raced content');
  });

  it('records a failure after maxAttempts when the blob keeps changing', async () => {
    await putEncryptedBlob(container, 'hot', Buffer.from('hot'), keys.a);
    const hotTarget: KeyEncryptionKey = {
      ...keys.b,
      keyId: keys.b.keyId,
      defaultAlgorithm: keys.b.defaultAlgorithm,
      unwrapKey: (alg, wrapped) => keys.b.unwrapKey(alg, wrapped),
      wrapKey: async (alg, payload) => {
        const blob = container.getBlobClient('hot');
        const current = await blob.getProperties();
        await blob.setMetadata({ ...current.metadata });
        return keys.b.wrapKey(alg, payload);
      },
    };
    const outcome = await rewrapBlob(
      container,
      await listedEntry('hot'),
      context({ target: hotTarget, maxAttempts: 3 }),
    );
    assert.equal(outcome.kind, 'failed');
    assert.match(outcome.kind === 'failed' ? outcome.reason : '', /^ConditionNotMet: .*3 attempts/);
    assert.equal((await readBlob(container, 'hot', keys.ring)).keyId, KEY_A, 'left under its old key, decryptable');
  });

  it('reports a blob deleted before or during its re-wrap as gone', async () => {
    await putEncryptedBlob(container, 'deleted-before', Buffer.from('x'), keys.a);
    const entry = await listedEntry('deleted-before');
    await container.getBlobClient('deleted-before').delete();
    assert.deepEqual(await rewrapBlob(container, entry, context()), { kind: 'gone' });

    await putEncryptedBlob(container, 'deleted-during', Buffer.from('x'), keys.a, { metadata: { k: 'v' } });
    const deleting: KeyEncryptionKey = {
      keyId: keys.b.keyId,
      defaultAlgorithm: keys.b.defaultAlgorithm,
      unwrapKey: (alg, wrapped) => keys.b.unwrapKey(alg, wrapped),
      wrapKey: async (alg, payload) => {
        await container.getBlobClient('deleted-during').deleteIfExists();
        return keys.b.wrapKey(alg, payload);
      },
    };
    assert.deepEqual(await rewrapBlob(container, await listedEntry('deleted-during'), context({ target: deleting })), {
      kind: 'gone',
    });
    assert.equal(
      await container.getBlobClient('deleted-during').exists(),
      false,
      'not re-created by the metadata write',
    );
  });

  it('records (not throws) a key id that is not allowed, tampered key data, and missing encryption data; the blob is left as it was', async () => {
    await putEncryptedBlob(container, 'foreign', Buffer.from('x'), keys.a);
    const blob = container.getBlobClient('foreign');
    const doc = JSON.parse((await blob.getProperties()).metadata?.['encryptiondata'] ?? '');
    doc.WrappedContentKey.KeyId = 'https://evil.vault.azure.net/keys/stolen/0123456789abcdef0123456789abcdef';
    await blob.setMetadata({ encryptiondata: JSON.stringify(doc) });
    const etag = (await blob.getProperties()).etag;
    const foreign = await rewrapBlob(container, await listedEntry('foreign'), context());
    assert.equal(foreign.kind, 'failed');
    assert.match(foreign.kind === 'failed' ? foreign.reason : '', /^KeyNotAllowed: /);
    assert.equal((await blob.getProperties()).etag, etag);

    await putEncryptedBlob(container, 'tampered', Buffer.from('x'), keys.a);
    const t = container.getBlobClient('tampered');
    const tdoc = JSON.parse((await t.getProperties()).metadata?.['encryptiondata'] ?? '');
    const wrapped = Buffer.from(tdoc.WrappedContentKey.EncryptedKey, 'base64');
    wrapped[5] = (wrapped[5] ?? 0) ^ 1;
    tdoc.WrappedContentKey.EncryptedKey = wrapped.toString('base64');
    await t.setMetadata({ encryptiondata: JSON.stringify(tdoc) });
    const tampered = await rewrapBlob(container, await listedEntry('tampered'), context());
    assert.match(tampered.kind === 'failed' ? tampered.reason : '', /^IntegrityCheckFailed: /);

    await container.getBlockBlobClient('plain').upload('plain', 5, { metadata: { other: 'x' } });
    const plain = await rewrapBlob(container, { name: 'plain', etag: '' }, context());
    assert.match(plain.kind === 'failed' ? plain.reason : '', /^NotEncrypted: /);

    await container.getBlockBlobClient('garbage').upload('g', 1, { metadata: { encryptiondata: '{"not":"valid"}' } });
    const garbage = await rewrapBlob(container, await listedEntry('garbage'), context());
    assert.match(garbage.kind === 'failed' ? garbage.reason : '', /^InvalidEncryptionData: /);
  });

  it('records a leased blob as a failure instead of retrying forever', async () => {
    await putEncryptedBlob(container, 'leased', Buffer.from('x'), keys.a);
    const lease = container.getBlobClient('leased').getBlobLeaseClient();
    await lease.acquireLease(30);
    try {
      const outcome = await rewrapBlob(container, await listedEntry('leased'), context());
      assert.equal(outcome.kind, 'failed');
      assert.match(outcome.kind === 'failed' ? outcome.reason : '', /^LeaseIdMissing: /);
    } finally {
      await lease.releaseLease();
    }
  });

  it('throws (for the work item to be retried) when the key service is unavailable', async () => {
    await putEncryptedBlob(container, 'unavailable', Buffer.from('x'), keys.a);
    const resolver: KeyResolver = {
      resolve: async () => {
        throw new CseError('KeyUnavailable', 'Key Vault is throttling', { retryAfterSeconds: 1 });
      },
    };
    await assert.rejects(
      rewrapBlob(container, await listedEntry('unavailable'), context({ resolver })),
      (e) => e instanceof CseError && e.code === 'KeyUnavailable',
    );
    assert.equal((await readBlob(container, 'unavailable', keys.ring)).keyId, KEY_A);
  });

  it('compares listed (bare) and returned (quoted) ETags by value', () => {
    assert.ok(sameEtag('"0x8DC1"', '0x8DC1'));
    assert.ok(sameEtag('0x8DC1', '0x8DC1'));
    assert.ok(sameEtag('W/"0x8DC1"', '"0x8DC1"'));
    assert.ok(!sameEtag('"0x8DC1"', '0x8DC2'));
  });

  it('uses the current case of metadata added after the listing', async () => {
    await putEncryptedBlob(container, 'late', Buffer.from('late'), keys.a, { metadata: { Early: '1' } });
    const entry = await listedEntry('late');
    const blob = container.getBlobClient('late');
    const current = await blob.getProperties();
    await blob.setMetadata({ Early: '1', LateComer: '2', encryptiondata: current.metadata?.['encryptiondata'] ?? '' });
    assert.equal((await rewrapBlob(container, entry, context())).kind, 'rewrapped');
    const listed = await listedMetadata('late');
    assert.equal(listed['Early'], '1');
    assert.equal(listed['LateComer'], '2');
  });
});
