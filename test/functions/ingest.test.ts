/**
 * Ingestion through the local Functions host's real queue listener, on a private Azurite: every message form
 * (source reference with and without target, inline content, Event Grid BlobCreated in both schemas, each inside
 * the encrypted envelope too), sizes across region boundaries, content type and metadata carried over, an
 * already-encrypted source copied unchanged, the completion notice, and targets read back through
 * GET /api/blobs and raw from Storage.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { encryptQueueMessage, envelopeToBase64 } from '../../shared/crypto/queueMessage';
import { encryptBlob } from '../../shared/crypto/blobEncryption';
import { parseEncryptionData } from '../../shared/crypto/encryptionData';
import { contentBytes, contentSha256, sha256 } from '../helpers/blobContent';
import {
  container,
  dropSource,
  eventually,
  exists,
  getThroughApi,
  KEY_ID,
  LANDING,
  logField,
  MiB,
  peekTexts,
  REGION,
  sendMessage,
  startIngestEnvironment,
  TARGET_CONTAINER,
  waitForCompletion,
  type IngestEnvironment,
} from './ingestHarness';

const STORED_OVERHEAD = 28;

function storedLength(plain: number): number {
  return plain + STORED_OVERHEAD * Math.ceil(plain / REGION);
}

function blobCreatedEvent(containerName: string, name: string, etag: string): Record<string, unknown> {
  return {
    topic:
      '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1',
    subject: `/blobServices/default/containers/${containerName}/blobs/${name}`,
    eventType: 'Microsoft.Storage.BlobCreated',
    eventTime: new Date().toISOString(),
    id: '831e1650-001e-001b-66ab-eeb76e069631',
    data: {
      api: 'PutBlob',
      clientRequestId: '6d79dbfb-0e37-4fc4-981f-442c9ca65760',
      requestId: '831e1650-001e-001b-66ab-eeb76e000000',
      eTag: etag,
      contentType: 'text/csv',
      contentLength: 524288,
      blobType: 'BlockBlob',
      url: `https://devstoreaccount1.blob.core.windows.net/${containerName}/${name.split('/').map(encodeURIComponent).join('/')}`,
      sequencer: '00000000000004420000000000028963',
      storageDiagnostics: { batchId: 'b68529f3-68cd-4744-baa4-3c0498ec19f0' },
    },
    dataVersion: '',
    metadataVersion: '1',
  };
}

describe('ingestion through the queue trigger', () => {
  let env: IngestEnvironment;

  before(async () => {
    env = await startIngestEnvironment('ingest-forms');
    await env.startHost();
  });
  after(async () => {
    await env?.close();
  });

  /** Checks a target holding the generated content `seed`/`length`: raw layout, API read, metadata. */
  async function assertTarget(
    name: string,
    seed: string,
    length: number,
    expected: { containerName?: string; contentType?: string; metadata?: Record<string, string> } = {},
  ): Promise<void> {
    const containerName = expected.containerName ?? TARGET_CONTAINER;
    const props = await container(env, containerName).getBlobClient(name).getProperties();
    assert.equal(props.contentLength, storedLength(length), `${name}: stored length`);
    const data = parseEncryptionData(props.metadata?.encryptiondata ?? '');
    assert.equal(data.protocol, '2.0');
    assert.equal(data.wrappedContentKey.keyId, KEY_ID);
    if (expected.contentType !== undefined) assert.equal(props.contentType, expected.contentType);
    for (const [k, v] of Object.entries(expected.metadata ?? {})) assert.equal(props.metadata?.[k], v, `metadata ${k}`);
    if (length > 0) {
      // Stored bytes are ciphertext, not the plaintext.
      const head = await container(env, containerName).getBlobClient(name).downloadToBuffer(12, Math.min(length, 64));
      assert.notDeepEqual(head, contentBytes(seed, 0, Math.min(length, 64)));
    }
    const got = await getThroughApi(env, containerName, name);
    assert.equal(got.status, 200, `${name}: GET status`);
    assert.deepEqual({ length: got.length, sha256: got.sha256 }, { length, sha256: contentSha256(seed, 0, length) });
    if (expected.contentType !== undefined) assert.equal(got.headers.get('content-type'), expected.contentType);
  }

  it('encrypts sources of 0 B to 9 MiB across region boundaries, carrying content type and metadata, then deletes them', async () => {
    const sizes = [0, 1, REGION - 1, REGION, REGION + 1, 9 * MiB];
    const from = env.host.logs.length;
    const etags = new Map<number, string>();
    for (const size of sizes) {
      etags.set(
        size,
        await dropSource(env, `sizes/${size}.bin`, `size-${size}`, size, {
          contentType: 'application/x-test',
          metadata: { origin: 'sftp', batch: String(size) },
        }),
      );
    }
    for (const size of sizes) await sendMessage(env, { source: { container: LANDING, name: `sizes/${size}.bin` } });
    for (const size of sizes) {
      const line = await waitForCompletion(env, `${TARGET_CONTAINER}/sizes/${size}.bin`, { from });
      assert.equal(logField(line, 'source'), `${LANDING}/sizes/${size}.bin`);
      assert.equal(logField(line, 'size'), String(size));
      assert.equal(logField(line, 'keyId'), KEY_ID);
      assert.match(logField(line, 'durationMs') ?? '', /^\d+$/);
      assert.equal(logField(line, 'action'), 'encrypted');
      assert.equal(logField(line, 'sourceDeleted'), 'true');
    }
    for (const size of sizes) {
      const name = `sizes/${size}.bin`;
      assert.equal(await exists(env, LANDING, name), false, `${name}: source deleted`);
      await assertTarget(name, `size-${size}`, size, {
        contentType: 'application/x-test',
        metadata: {
          origin: 'sftp',
          batch: String(size),
          cse_ingest_source_container: LANDING,
          cse_ingest_source_name: encodeURIComponent(name),
          cse_ingest_source_etag: etags.get(size)!,
        },
      });
    }
  });

  it('honours an explicit target and deleteSource:false (the source stays)', async () => {
    const etag = await dropSource(env, 'keep/report.pdf', 'keep', 300_000, { contentType: 'application/pdf' });
    const from = env.host.logs.length;
    await sendMessage(env, {
      source: { container: LANDING, name: 'keep/report.pdf' },
      target: { container: 'archive', name: 'reports/2024/report.pdf' },
      deleteSource: false,
    });
    const line = await waitForCompletion(env, 'archive/reports/2024/report.pdf', { from });
    assert.equal(logField(line, 'sourceDeleted'), 'false');
    const source = await container(env, LANDING).getBlobClient('keep/report.pdf').getProperties();
    assert.equal(source.etag, etag, 'the source is untouched');
    await assertTarget('reports/2024/report.pdf', 'keep', 300_000, {
      containerName: 'archive',
      contentType: 'application/pdf',
    });
  });

  it('defaults a partial target: only a name, or only a container', async () => {
    await dropSource(env, 'partial/a.txt', 'pa', 1000);
    await dropSource(env, 'partial/b.txt', 'pb', 1000);
    const from = env.host.logs.length;
    await sendMessage(env, {
      source: { container: LANDING, name: 'partial/a.txt' },
      target: { name: 'renamed/a.txt' },
    });
    await sendMessage(env, { source: { container: LANDING, name: 'partial/b.txt' }, target: { container: 'other' } });
    await waitForCompletion(env, `${TARGET_CONTAINER}/renamed/a.txt`, { from });
    await waitForCompletion(env, 'other/partial/b.txt', { from });
    await assertTarget('renamed/a.txt', 'pa', 1000);
    await assertTarget('partial/b.txt', 'pb', 1000, { containerName: 'other' });
  });

  it('encrypts an inline payload with its content type and metadata', async () => {
    const payload = Buffer.from(JSON.stringify({ order: 42, items: ['a', 'b'] }));
    const from = env.host.logs.length;
    await sendMessage(env, {
      content: payload.toString('base64'),
      target: { name: 'inline/order-42.json' },
      contentType: 'application/json',
      metadata: { Partner: 'contoso' },
    });
    const line = await waitForCompletion(env, `${TARGET_CONTAINER}/inline/order-42.json`, { from });
    assert.equal(logField(line, 'source'), 'inline');
    assert.equal(logField(line, 'size'), String(payload.length));
    const props = await container(env, TARGET_CONTAINER).getBlobClient('inline/order-42.json').getProperties();
    assert.equal(props.contentType, 'application/json');
    assert.equal(props.metadata?.partner, 'contoso');
    assert.equal(props.metadata?.cse_ingest_content_sha256, sha256(payload));
    const got = await getThroughApi(env, TARGET_CONTAINER, 'inline/order-42.json');
    assert.deepEqual({ status: got.status, sha256: got.sha256 }, { status: 200, sha256: sha256(payload) });
  });

  it('ingests the blob an Event Grid BlobCreated event names (Event Grid and CloudEvents schemas)', async () => {
    const name = 'drop/2024 06/äöü data.csv';
    const etag = await dropSource(env, name, 'eg', 2 * MiB + 5, { contentType: 'text/csv', metadata: { rows: '7' } });
    await dropSource(env, 'drop/cloud.csv', 'ce', 77);
    const from = env.host.logs.length;
    await sendMessage(env, blobCreatedEvent(LANDING, name, etag));
    await sendMessage(env, {
      specversion: '1.0',
      type: 'Microsoft.Storage.BlobCreated',
      source: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1',
      id: 'e1',
      time: new Date().toISOString(),
      subject: `/blobServices/default/containers/${LANDING}/blobs/drop/cloud.csv`,
      data: { api: 'PutBlob', eTag: 'x', contentType: 'text/csv', blobType: 'BlockBlob' },
    });
    const line = await waitForCompletion(env, `${TARGET_CONTAINER}/${name}`, { from });
    assert.equal(logField(line, 'form'), 'eventGrid');
    await waitForCompletion(env, `${TARGET_CONTAINER}/drop/cloud.csv`, { from });
    assert.equal(await exists(env, LANDING, name), false);
    assert.equal(await exists(env, LANDING, 'drop/cloud.csv'), false);
    await assertTarget(name, 'eg', 2 * MiB + 5, { contentType: 'text/csv', metadata: { rows: '7' } });
    await assertTarget('drop/cloud.csv', 'ce', 77);
  });

  it('decrypts messages sent in the encrypted envelope (base64 of the envelope JSON), in every form', async () => {
    const kek = env.keys.get(KEY_ID)!;
    await dropSource(env, 'sealed/source.bin', 'sealed-src', 5 * MiB);
    const eventEtag = await dropSource(env, 'sealed/event.bin', 'sealed-ev', 1234);
    const inline = contentBytes('sealed-inline', 0, 4000);
    const from = env.host.logs.length;
    const seal = async (message: unknown): Promise<string> =>
      envelopeToBase64(await encryptQueueMessage(JSON.stringify(message), kek));
    // The queue client sends the text as is: it already is the base64 the host expects.
    await env.queue.sendMessage(await seal({ source: { container: LANDING, name: 'sealed/source.bin' } }));
    await env.queue.sendMessage(
      await seal({ content: inline.toString('base64'), target: { name: 'sealed/inline.bin' } }),
    );
    await env.queue.sendMessage(await seal(blobCreatedEvent(LANDING, 'sealed/event.bin', eventEtag)));
    for (const name of ['sealed/source.bin', 'sealed/inline.bin', 'sealed/event.bin']) {
      const line = await waitForCompletion(env, `${TARGET_CONTAINER}/${name}`, { from });
      assert.match(logField(line, 'form') ?? '', /\+envelope$/);
    }
    await assertTarget('sealed/source.bin', 'sealed-src', 5 * MiB);
    await assertTarget('sealed/inline.bin', 'sealed-inline', 4000);
    await assertTarget('sealed/event.bin', 'sealed-ev', 1234);
    assert.equal(await exists(env, LANDING, 'sealed/source.bin'), false);
    assert.equal(await exists(env, LANDING, 'sealed/event.bin'), false);
  });

  it('copies an already-encrypted source unchanged (bytes and encryption data), without encrypting it again', async () => {
    const kek = env.keys.get(KEY_ID)!;
    const plaintext = contentBytes('pre', 0, REGION + 10);
    const { metadataValue, ciphertext } = await encryptBlob(kek, plaintext);
    await container(env, LANDING)
      .getBlockBlobClient('pre/encrypted.bin')
      .uploadData(ciphertext, {
        metadata: { encryptiondata: metadataValue, owner: 'team-a' },
        blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
      });
    const from = env.host.logs.length;
    await sendMessage(env, { source: { container: LANDING, name: 'pre/encrypted.bin' } });
    const line = await waitForCompletion(env, `${TARGET_CONTAINER}/pre/encrypted.bin`, { from });
    assert.equal(logField(line, 'action'), 'copied');
    assert.equal(logField(line, 'size'), String(REGION + 10));
    const target = container(env, TARGET_CONTAINER).getBlobClient('pre/encrypted.bin');
    const props = await target.getProperties();
    assert.equal(props.metadata?.encryptiondata, metadataValue, 'encryption data unchanged');
    assert.equal(props.metadata?.owner, 'team-a');
    assert.deepEqual(await target.downloadToBuffer(), ciphertext, 'stored bytes unchanged');
    const got = await getThroughApi(env, TARGET_CONTAINER, 'pre/encrypted.bin');
    assert.equal(got.sha256, sha256(plaintext));
    assert.equal(await exists(env, LANDING, 'pre/encrypted.bin'), false);
  });

  it('sends a completion notice to ingest-done and never logs key material', async () => {
    await dropSource(env, 'notice/n.txt', 'notice', 10);
    const from = env.host.logs.length;
    await sendMessage(env, { source: { container: LANDING, name: 'notice/n.txt' } });
    await waitForCompletion(env, `${TARGET_CONTAINER}/notice/n.txt`, { from });
    const notice = await eventually('the completion notice', async () => {
      const texts = await peekTexts(env, 'ingest-done');
      return texts
        .map((t) => JSON.parse(t) as Record<string, unknown>)
        .find((n) => {
          const target = n.target as { name?: string } | undefined;
          return target?.name === 'notice/n.txt';
        });
    });
    const targetProps = await container(env, TARGET_CONTAINER).getBlobClient('notice/n.txt').getProperties();
    assert.deepEqual(
      { ...notice, durationMs: typeof notice.durationMs, completedAt: typeof notice.completedAt },
      {
        action: 'encrypted',
        source: { container: LANDING, name: 'notice/n.txt', etag: (notice.source as { etag: string }).etag },
        target: { container: TARGET_CONTAINER, name: 'notice/n.txt', etag: targetProps.etag },
        size: 10,
        keyId: KEY_ID,
        protocol: '2.0',
        sourceDeleted: true,
        durationMs: 'number',
        completedAt: 'string',
      },
    );
    const secret = (JSON.parse(readFileSync(env.keysFile, 'utf8')) as { keys: { k: string }[] }).keys[0]!.k;
    assert.ok(!env.host.logs.some((l) => l.includes(secret)), 'the key never appears in the log');
  });
});
