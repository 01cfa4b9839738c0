/**
 * v1.0 -> v2.0 re-encryption of blobs in a rotation (Azurite, the Python SDK's v1.0 golden vectors): content,
 * content headers, user metadata (with its case), tags and an explicit tier kept; counted `reencrypted` the same
 * whichever delivery looks; a blob that changed is retried, a tampered one fails without being written.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerClient } from '@azure/storage-blob';
import { parseEncryptionData } from '../../../shared/crypto/encryptionData';
import { rewrapBlob, type BlobWorkEntry, type RewrapContext } from '../../../shared/rotation/blobRewrap';
import { decodeEntries, encodeEntries } from '../../../shared/rotation/workItem';
import { outcomeUnderTarget, reencryptV1Blob } from '../../../shared/rotation/v1Reencryption';
import { startAzurite, type RunningAzurite } from '../../helpers/azurite';
import { patternPlaintext } from '../../helpers/vectors';
import {
  KEY_B,
  containerName,
  putVectorBlob,
  readBlob,
  sha256,
  storageClients,
  testKeys,
  type TestKeys,
} from './harness';

describe('outcomeUnderTarget', () => {
  it('depends only on the state when listed and now', () => {
    assert.deepEqual(outcomeUnderTarget('1.0', true, false), { kind: 'rewrapped', legacyV1: true });
    assert.equal(outcomeUnderTarget('1.0', true, true), undefined, 'v1.0 under the target still needs re-encrypting');
    assert.deepEqual(outcomeUnderTarget('2.0', true, true), { kind: 'reencrypted' });
    assert.deepEqual(outcomeUnderTarget('2.0', true, false), { kind: 'rewrapped', legacyV1: false });
    assert.deepEqual(outcomeUnderTarget('2.0', false, true), { kind: 'rewrapped', legacyV1: false });
    assert.deepEqual(outcomeUnderTarget('2.1', false, false), { kind: 'rewrapped', legacyV1: false });
  });
});

describe('work entries keep "v1.0 when listed"', () => {
  it('round-trips listedV1 with and without mixed-case names, and old entries without it', () => {
    const entries: BlobWorkEntry[] = [
      { name: 'a', etag: '"1"' },
      { name: 'b', etag: '"2"', listedV1: true },
      { name: 'c', etag: '"3"', mixedCaseNames: ['MyKey'], listedV1: true },
      { name: 'd', etag: '"4"', mixedCaseNames: ['MyKey'] },
    ];
    assert.deepEqual(decodeEntries('blob', encodeEntries({ kind: 'blob', entries })), { kind: 'blob', entries });
  });
});

describe('re-encrypting v1.0 blobs (Azurite)', () => {
  let azurite: RunningAzurite;
  let keys: TestKeys;
  let container: ContainerClient;
  const noWait = async (): Promise<void> => undefined;

  before(async () => {
    azurite = await startAzurite();
    keys = await testKeys();
    container = storageClients(azurite).blobService.getContainerClient(containerName('reencrypt'));
    await container.create();
  });
  after(() => azurite?.stop());

  const context = (overrides: Partial<RewrapContext> = {}): RewrapContext => ({
    resolver: keys.ring.resolver,
    target: keys.b,
    sleep: noWait,
    reencryptV1: true,
    ...overrides,
  });

  async function listed(name: string): Promise<{ entry: BlobWorkEntry; metadata: Record<string, string> }> {
    for await (const item of container.listBlobsFlat({ prefix: name, includeMetadata: true })) {
      if (item.name !== name) continue;
      const metadata = item.metadata ?? {};
      const names = Object.keys(metadata).filter((n) => n !== n.toLowerCase());
      const v1 = parseEncryptionData(metadata['encryptiondata'] ?? '').protocol === '1.0';
      return {
        entry: {
          name,
          etag: item.properties.etag ?? '',
          ...(names.length ? { mixedCaseNames: names } : {}),
          ...(v1 ? { listedV1: true } : {}),
        },
        metadata,
      };
    }
    throw new Error(`${name} not listed`);
  }

  /** A v1.0 vector with user metadata (mixed case), every content header, a tag and an explicit tier. */
  async function v1Blob(name: string, vector: string): Promise<void> {
    await putVectorBlob(container, name, vector);
    const blob = container.getBlobClient(name);
    const encryptiondata = (await blob.getProperties()).metadata?.['encryptiondata'] ?? '';
    await blob.setMetadata({ encryptiondata, MyKey: 'Mixed', plain: 'p' });
    await blob.setHTTPHeaders({
      blobContentType: 'text/x-test',
      blobContentEncoding: 'identity',
      blobContentLanguage: 'fr',
      blobContentDisposition: 'attachment; filename="x.txt"',
      blobCacheControl: 'no-cache',
    });
    await blob.setTags({ project: 'cse' });
    await blob.setAccessTier('Cool');
  }

  for (const [vector, length] of [
    ['blob-v1-oct-31', 31],
    ['blob-v1-rsa-31', 31],
    ['blob-v1-oct-0', 0],
    ['blob-v1-oct-4194309', 4194309],
  ] as const) {
    it(`${vector}: becomes v2.0 under the target with the same plaintext and everything else kept`, async () => {
      const name = `v1/${vector}`;
      await v1Blob(name, vector);
      const { entry } = await listed(name);
      assert.equal(entry.listedV1, true);

      assert.deepEqual(await rewrapBlob(container, entry, context()), { kind: 'reencrypted' });

      const read = await readBlob(container, name, keys.onlyB);
      assert.equal(read.keyId, KEY_B);
      assert.equal(sha256(read.plaintext), sha256(patternPlaintext(length)), 'same plaintext, with key B alone');
      const data = parseEncryptionData(read.metadata['encryptiondata'] ?? '');
      assert.equal(data.protocol, '2.0');
      const after = await listed(name);
      assert.equal(after.metadata['MyKey'], 'Mixed', 'user metadata kept, name case included');
      assert.equal(after.metadata['plain'], 'p');
      const props = await container.getBlobClient(name).getProperties();
      assert.equal(props.contentType, 'text/x-test');
      assert.equal(props.contentEncoding, 'identity');
      assert.equal(props.contentLanguage, 'fr');
      assert.equal(props.contentDisposition, 'attachment; filename="x.txt"');
      assert.equal(props.cacheControl, 'no-cache');
      assert.equal(props.accessTier, 'Cool');
      assert.deepEqual((await container.getBlobClient(name).getTags()).tags, { project: 'cse' });

      // Delivered again (its first delivery died before recording): counted the same, nothing written.
      assert.deepEqual(await rewrapBlob(container, entry, context()), { kind: 'reencrypted' });
      assert.equal((await container.getBlobClient(name).getProperties()).etag, props.etag);
    });
  }

  it('re-encrypts a v1.0 blob already under the target key (the rotation target did not change)', async () => {
    const name = 'v1/under-b';
    await v1Blob(name, 'blob-v1-oct-16');
    const first = await listed(name);
    assert.deepEqual(await rewrapBlob(container, first.entry, context({ reencryptV1: false })), {
      kind: 'rewrapped',
      legacyV1: true,
    });
    const second = await listed(name);
    assert.equal(parseEncryptionData(second.metadata['encryptiondata'] ?? '').wrappedContentKey.keyId, KEY_B);
    assert.equal(parseEncryptionData(second.metadata['encryptiondata'] ?? '').protocol, '1.0');
    assert.deepEqual(await rewrapBlob(container, second.entry, context()), { kind: 'reencrypted' });
    const read = await readBlob(container, name, keys.onlyB);
    assert.deepEqual(read.plaintext, patternPlaintext(16));
    assert.equal(parseEncryptionData(read.metadata['encryptiondata'] ?? '').protocol, '2.0');
  });

  it('writes nothing when the blob changed since its ETag was read (412), and the re-wrap step retries it', async () => {
    const name = 'v1/changed';
    await v1Blob(name, 'blob-v1-oct-31');
    const { entry, metadata } = await listed(name);
    await container.getBlobClient(name).setMetadata({ ...metadata, other: 'edit' });
    const etag = (await container.getBlobClient(name).getProperties()).etag;
    const result = await reencryptV1Blob(
      container.getBlobClient(name),
      { etag: entry.etag, metadata, encryptionDataName: 'encryptiondata' },
      { resolver: keys.ring.resolver, target: keys.b },
    );
    assert.deepEqual(result, { kind: 'changed' });
    assert.equal((await container.getBlobClient(name).getProperties()).etag, etag, 'not written');
    // Through the re-wrap step: the edit is read again and kept.
    assert.deepEqual(await rewrapBlob(container, entry, context()), { kind: 'reencrypted' });
    assert.equal((await listed(name)).metadata['other'], 'edit');
  });

  it('fails a tampered v1.0 blob (bad padding) without writing it', async () => {
    const name = 'v1/tampered';
    const stored = await putVectorBlob(container, name, 'blob-v1-oct-31');
    const tampered = Buffer.from(stored);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 0x55;
    const encryptiondata = (await container.getBlobClient(name).getProperties()).metadata?.['encryptiondata'] ?? '';
    await container.getBlockBlobClient(name).upload(tampered, tampered.length, { metadata: { encryptiondata } });
    const { entry } = await listed(name);
    const etag = (await container.getBlobClient(name).getProperties()).etag;
    const outcome = await rewrapBlob(container, entry, context());
    assert.equal(outcome.kind, 'failed');
    assert.match((outcome as { reason: string }).reason, /^IntegrityCheckFailed: /);
    assert.equal((await container.getBlobClient(name).getProperties()).etag, etag, 'not written');
  });
});
