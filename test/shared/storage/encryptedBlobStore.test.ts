/**
 * The encrypted blob store against a real Azurite: uploads are real staged blocks + commit, reads are real ranged
 * GETs. HTTP semantics are tested through the local host in test/functions/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BlobServiceClient } from '@azure/storage-blob';
import { isCseError } from '../../../shared/errors';
import { generateDevelopmentKeySet, parseJwkSet } from '../../../shared/keys/localKeys';
import { ContainerPolicy } from '../../../shared/storage/containerPolicy';
import {
  EncryptedBlobStore,
  type EncryptedBlobStoreOptions,
  type OpenedBlob,
} from '../../../shared/storage/encryptedBlobStore';
import { azuriteConnectionString, startAzurite, type RunningAzurite } from '../../helpers/azurite';
import { startStorageProxy } from '../../helpers/storageProxy';
import { contentSha256, contentStream, digestStream, sha256 } from '../../helpers/blobContent';

const MiB = 1024 * 1024;
const REGION = 4 * MiB;
const STORED_REGION = REGION + 28;

describe('EncryptedBlobStore (Azurite)', () => {
  let azurite: RunningAzurite;
  let service: BlobServiceClient;
  const keys = parseJwkSet(generateDevelopmentKeySet('local:store-test'), 'test keys');
  const keyRing = {
    resolver: keys,
    activeKey: async () => keys.get('local:store-test')!,
  };
  const store = (options: Partial<EncryptedBlobStoreOptions> = {}): EncryptedBlobStore =>
    new EncryptedBlobStore(service, keyRing, {
      containers: ContainerPolicy.fromSetting('*'),
      allowV1: false,
      allowPlaintextReads: false,
      ...options,
    });

  /** Stores 9 MiB (content seed = name) through `s`, then flips one stored bit in region 1, keeping the metadata. */
  async function uploadTampered(s: EncryptedBlobStore, container: string, name: string): Promise<void> {
    await s.upload(container, name, contentStream(name, 9 * MiB));
    const raw = service.getContainerClient(container).getBlockBlobClient(name);
    const props = await raw.getProperties();
    const stored = await raw.downloadToBuffer();
    stored.writeUInt8(stored.readUInt8(STORED_REGION + 100) ^ 1, STORED_REGION + 100);
    await raw.upload(stored, stored.length, { metadata: props.metadata });
  }

  before(async () => {
    azurite = await startAzurite();
    service = BlobServiceClient.fromConnectionString(azurite.connectionString);
  });
  after(() => azurite?.stop());

  it('round-trips across region boundaries and creates the container', async () => {
    const s = store({ uploadConcurrency: 2 });
    for (const length of [0, 1, REGION - 1, REGION, REGION + 1, 9 * MiB]) {
      const seed = `rt-${length}`;
      const result = await s.upload('roundtrip', `blob-${length}`, contentStream(seed, length, 100_000));
      assert.equal(result.contentLength, length);
      assert.equal(result.protocol, '2.0');
      assert.equal(result.keyId, 'local:store-test');
      const opened = await s.open('roundtrip', `blob-${length}`);
      assert.equal(opened.contentLength, length);
      assert.equal(opened.etag, result.etag);
      const read = await digestStream(s.read(opened));
      assert.deepEqual(read, { length, sha256: contentSha256(seed, 0, length) });
    }
  });

  it('reads a range with ONE storage GET covering only the regions needed', async () => {
    const s = store();
    const length = 9 * MiB;
    await s.upload('ranges', 'nine', contentStream('nine', length));
    const opened = await s.open('ranges', 'nine');
    const cases: [number, number, number][] = [
      // [start, end, stored bytes expected]
      [0, 0, STORED_REGION],
      [REGION - 1, REGION, 2 * STORED_REGION], // crosses the first boundary
      [REGION, REGION, STORED_REGION],
      [length - 1, length - 1, length - 2 * REGION + 28], // the last, shorter region
      [5 * MiB, 9 * MiB - 1, STORED_REGION + (length - 2 * REGION + 28)],
    ];
    for (const [start, end, stored] of cases) {
      let storedBytes = 0;
      const data = await digestStream(s.read(opened, { start, end }, { onStoredBytes: (n) => (storedBytes += n) }));
      assert.deepEqual(data, { length: end - start + 1, sha256: contentSha256('nine', start, end - start + 1) });
      assert.equal(storedBytes, stored, `stored bytes for ${start}-${end}`);
    }
  });

  it('stores content headers and user metadata beside encryptiondata', async () => {
    const s = store();
    await s.upload('props', 'a/b c/ü.txt', contentStream('p', 10), {
      metadata: { author: 'ann', project: 'x' },
      contentHeaders: { contentType: 'text/plain', cacheControl: 'no-cache', contentLanguage: 'de' },
    });
    const opened = await s.open('props', 'a/b c/ü.txt');
    assert.deepEqual(opened.metadata, { author: 'ann', project: 'x' });
    assert.equal(opened.contentHeaders.contentType, 'text/plain');
    assert.equal(opened.contentHeaders.cacheControl, 'no-cache');
    assert.equal(opened.contentHeaders.contentLanguage, 'de');
    const raw = await service.getContainerClient('props').getBlobClient('a/b c/ü.txt').getProperties();
    assert.ok(raw.metadata?.encryptiondata?.includes('"Protocol":"2.0"'));
    assert.equal(raw.contentLength, 10 + 28);
  });

  it('commits nothing when the source fails midway, and leaves an existing blob untouched', async () => {
    const s = store();
    const container = service.getContainerClient('faults');
    async function* failing(): AsyncGenerator<Buffer> {
      yield* contentStream('f', 6 * MiB);
      throw new Error('client went away');
    }
    await assert.rejects(s.upload('faults', 'new', failing()), /client went away/);
    assert.equal(await container.getBlobClient('new').exists(), false);

    const before = await s.upload('faults', 'existing', contentStream('old', 1000));
    await assert.rejects(s.upload('faults', 'existing', failing()), /client went away/);
    const opened = await s.open('faults', 'existing');
    assert.equal(opened.etag, before.etag);
    assert.equal((await digestStream(s.read(opened))).sha256, contentSha256('old', 0, 1000));
  });

  it('refuses a body shorter than announced (nothing committed)', async () => {
    const s = store();
    await assert.rejects(s.upload('faults', 'short', contentStream('s', 100), { expectedLength: 101 }), (e) =>
      isCseError(e, 'InvalidRequest'),
    );
    assert.equal(await service.getContainerClient('faults').getBlobClient('short').exists(), false);
  });

  it('checks the 8 KiB metadata limit (with encryptiondata) before reading the body', async () => {
    const s = store();
    let pulled = false;
    async function* body(): AsyncGenerator<Buffer> {
      pulled = true;
      yield Buffer.from('x');
    }
    await assert.rejects(s.upload('meta', 'big', body(), { metadata: { big: 'x'.repeat(7900) } }), (e) =>
      isCseError(e, 'MetadataTooLarge'),
    );
    assert.equal(pulled, false);
    assert.equal(await service.getContainerClient('meta').getBlobClient('big').exists(), false);
  });

  it('honours If-None-Match: * and If-Match on upload', async () => {
    const s = store();
    const first = await s.upload('cond', 'x', contentStream('1', 10), { conditions: { ifNoneMatch: '*' } });
    await assert.rejects(s.upload('cond', 'x', contentStream('2', 10), { conditions: { ifNoneMatch: '*' } }), (e) =>
      isCseError(e, 'BlobExists'),
    );
    await assert.rejects(s.upload('cond', 'x', contentStream('2', 10), { conditions: { ifMatch: '"0x1"' } }), (e) =>
      isCseError(e, 'ConditionNotMet'),
    );
    await assert.rejects(s.upload('cond', 'missing', contentStream('2', 10), { conditions: { ifMatch: '*' } }), (e) =>
      isCseError(e, 'ConditionNotMet'),
    );
    const second = await s.upload('cond', 'x', contentStream('3', 10), { conditions: { ifMatch: first.etag } });
    assert.notEqual(second.etag, first.etag);
  });

  it('replaces metadata keeping encryptiondata, under If-Match, retrying concurrent changes', async () => {
    const s = store();
    await s.upload('meta', 'm', contentStream('m', 5 * MiB), { metadata: { a: '1' } });
    const raw = service.getContainerClient('meta').getBlobClient('m');
    const encryptiondata = (await raw.getProperties()).metadata?.encryptiondata;
    // Concurrent replacements without If-Match all succeed (412s are retried) and never lose encryptiondata.
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => s.replaceMetadata('meta', 'm', { writer: String(i) })),
    );
    assert.equal(results.length, 4);
    const props = await raw.getProperties();
    assert.equal(props.metadata?.encryptiondata, encryptiondata);
    assert.match(props.metadata?.writer ?? '', /^[0-3]$/);
    assert.equal(props.metadata?.a, undefined);
    await assert.rejects(s.replaceMetadata('meta', 'm', { b: '2' }, { ifMatch: '"0x8D000000000000"' }), (e) =>
      isCseError(e, 'ConditionNotMet'),
    );
    const opened = await s.open('meta', 'm');
    assert.equal((await digestStream(s.read(opened))).sha256, contentSha256('m', 0, 5 * MiB));
    await assert.rejects(s.replaceMetadata('meta', 'm', { big: 'x'.repeat(8000) }), (e) =>
      isCseError(e, 'MetadataTooLarge'),
    );
  });

  it('lists one page at a time with plaintext lengths', async () => {
    const s = store();
    for (const [name, length] of [
      ['l/a', 0],
      ['l/b', 1],
      ['l/c', REGION + 1],
    ] as const) {
      await s.upload('listing', name, contentStream(name, length));
    }
    await service.getContainerClient('listing').getBlockBlobClient('l/plain').upload('hello', 5);
    await service.getContainerClient('listing').getBlockBlobClient('other').upload('x', 1);
    const page1 = await s.list('listing', { prefix: 'l/', maxResults: 2 });
    assert.equal(page1.blobs.length, 2);
    assert.ok(page1.continuationToken);
    const page2 = await s.list('listing', { prefix: 'l/', maxResults: 2, continuationToken: page1.continuationToken });
    assert.equal(page2.continuationToken, null);
    const all = [...page1.blobs, ...page2.blobs];
    assert.deepEqual(
      all.map((b) => [b.name, b.contentLength, b.protocol, b.keyId]),
      [
        ['l/a', 0, '2.0', 'local:store-test'],
        ['l/b', 1, '2.0', 'local:store-test'],
        ['l/c', REGION + 1, '2.0', 'local:store-test'],
        ['l/plain', 5, null, null],
      ],
    );
    assert.deepEqual(await s.list('never-created'), { blobs: [], continuationToken: null });
  });

  it('refuses unencrypted blobs unless plaintext reads are allowed', async () => {
    await service.getContainerClient('plain').createIfNotExists();
    await service.getContainerClient('plain').getBlockBlobClient('p').upload('plain text', 10);
    await assert.rejects(store().open('plain', 'p'), (e) => isCseError(e, 'NotEncrypted'));
    const s = store({ allowPlaintextReads: true });
    const opened = await s.open('plain', 'p');
    assert.equal(opened.content.kind, 'plaintext');
    const part = await digestStream(s.read(opened, { start: 6, end: 9 }));
    assert.deepEqual(part, { length: 4, sha256: sha256(Buffer.from('text')) });
  });

  it('never yields plaintext of a tampered region', async () => {
    const s = store();
    await uploadTampered(s, 'tamper', 't');
    const opened = await s.open('tamper', 't');
    // Region 0 alone is intact and readable.
    const head = await digestStream(s.read(opened, { start: 0, end: 999 }));
    assert.equal(head.sha256, contentSha256('t', 0, 1000));
    // Reading through region 1: region 0 comes out, then the failure; nothing of region 1 or later.
    let yielded = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of s.read(opened)) yielded += chunk.length;
      })(),
      (e) => isCseError(e, 'IntegrityCheckFailed'),
    );
    assert.ok(yielded <= REGION, `yielded ${yielded} bytes`);
  });

  it('detects a blob replaced between open and read', async () => {
    const s = store();
    await s.upload('race', 'r', contentStream('r1', 100));
    const opened = await s.open('race', 'r');
    await s.upload('race', 'r', contentStream('r2', 100));
    await assert.rejects(digestStream(s.read(opened)), (e) => isCseError(e, 'ConditionNotMet'));
  });

  it('reads a whole blob in ONE storage request, reporting what open() reports', async () => {
    const s = store();
    const proxy = await startStorageProxy(azurite.blobEndpoint);
    try {
      const viaProxy = new EncryptedBlobStore(
        BlobServiceClient.fromConnectionString(
          azuriteConnectionString({
            blob: proxy.blobEndpoint,
            queue: azurite.queueEndpoint,
            table: azurite.tableEndpoint,
          }),
        ),
        keyRing,
        { containers: ContainerPolicy.fromSetting('*'), allowV1: false, allowPlaintextReads: false },
      );
      for (const length of [0, 1, REGION + 1]) {
        const name = `w/${length}`;
        await s.upload('whole', name, contentStream(name, length), {
          metadata: { author: 'ann' },
          contentHeaders: { contentType: 'text/plain', contentLanguage: 'de', cacheControl: 'no-cache' },
        });
        const expected = await s.open('whole', name);
        proxy.seen.length = 0;
        const whole = await viaProxy.openWhole('whole', name);
        assert.deepEqual(describeOpened(whole.blob), describeOpened(expected));
        assert.deepEqual(await digestStream(whole.content), { length, sha256: contentSha256(name, 0, length) });
        assert.deepEqual(
          proxy.seen.map(({ request }) => [request.method, request.headers['x-ms-range'] ?? request.headers.range]),
          [['GET', undefined]],
          `storage requests for ${length} bytes`,
        );
      }
    } finally {
      await proxy.close();
    }
  });

  it('openWhole refuses what open() refuses, and never yields a tampered region', async () => {
    await assert.rejects(store().openWhole('whole', 'missing'), (e) => isCseError(e, 'BlobNotFound'));
    const plain = service.getContainerClient('whole').getBlockBlobClient('plain');
    await plain.upload('plain text', 10);
    await assert.rejects(store().openWhole('whole', 'plain'), (e) => isCseError(e, 'NotEncrypted'));
    const served = await store({ allowPlaintextReads: true }).openWhole('whole', 'plain');
    assert.equal(served.blob.content.kind, 'plaintext');
    assert.deepEqual(await digestStream(served.content), { length: 10, sha256: sha256(Buffer.from('plain text')) });

    const s = store();
    await uploadTampered(s, 'whole', 'tampered');
    const whole = await s.openWhole('whole', 'tampered');
    let yielded = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of whole.content) yielded += chunk.length;
      })(),
      (e) => isCseError(e, 'IntegrityCheckFailed'),
    );
    assert.equal(yielded, REGION, 'region 0 only');
  });

  it('validates names and the container policy before any storage call', async () => {
    const s = new EncryptedBlobStore(service, keyRing, {
      containers: ContainerPolicy.fromSetting('only-this'),
      allowV1: false,
      allowPlaintextReads: false,
    });
    await assert.rejects(s.open('other', 'x'), (e) => isCseError(e, 'ContainerNotAllowed'));
    await assert.rejects(s.open('only-this', '../other/x'), (e) => isCseError(e, 'InvalidName'));
    await assert.rejects(s.open('only-this', 'x'), (e) => isCseError(e, 'BlobNotFound'));
    await assert.rejects(s.delete('only-this', 'x'), (e) => isCseError(e, 'BlobNotFound'));
  });
});

/** What an opened blob tells a caller (its decryptor is an object of its own per open). */
function describeOpened(blob: OpenedBlob): Record<string, unknown> {
  const { content, ...rest } = blob;
  return content.kind === 'plaintext'
    ? { ...rest, content: 'plaintext' }
    : { ...rest, protocol: content.protocol, keyId: content.keyId };
}
