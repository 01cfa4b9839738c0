/**
 * v1.0 migration and snapshots through the local host, with blobs written by Microsoft's Python SDK
 * (/usr/bin/python3, test/interop/rotation_blobs.py):
 *
 *  - a rotation without `reencryptV1` re-wraps the v1.0 blobs (they stay v1.0), one with it re-encrypts them to
 *    v2.0 (`reencrypted`); the Python SDK, given only the target key, reads every blob after each, with its
 *    content, user metadata (name case included) and content settings unchanged; blob index tags survive;
 *  - snapshots cannot be re-wrapped: each rotation counts those under old keys per key id
 *    (`snapshotsUnderOldKeys`), and not those under its target.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerClient } from '@azure/storage-blob';
import { parseEncryptionData } from '../../shared/crypto/encryptionData';
import type { RotationView } from '../../shared/rotation/types';
import { KEY_A, KEY_B, VECTOR_OCT, containerName, putVectorBlob } from '../shared/rotation/harness';
import {
  pythonRead,
  pythonWrite,
  startRotationHost,
  type PythonRead,
  type PythonWritten,
  type RotationHost,
} from './rotationsHarness';

const COUNT = 12;

describe('v1.0 migration and snapshot counts (local host, Python SDK)', () => {
  let h: RotationHost;
  let container: ContainerClient;
  let written: PythonWritten[];
  /** What the Python SDK read before any rotation (with key A). */
  let baseline: PythonRead;

  before(async () => {
    h = await startRotationHost();
    container = h.clients.blobService.getContainerClient(containerName('v1py'));
    await container.create();
    written = await pythonWrite(h.azurite.connectionString, container.containerName, h.allKeysFile, KEY_A, {
      count: COUNT,
      prefix: 'py/',
      v1Every: 1,
    });
    baseline = await pythonRead(
      h.azurite.connectionString,
      container.containerName,
      h.allKeysFile,
      KEY_A,
      written.map((w) => w.name),
    );
    assert.deepEqual(baseline.errors, {});
  });
  after(() => h?.stop());

  async function rotate(body: object): Promise<RotationView> {
    const res = await h.post({ containers: [container.containerName], tables: [], ...body });
    assert.equal(res.status, 202, await res.clone().text());
    const { id } = (await res.json()) as { id: string };
    return h.waitFinished(id);
  }

  async function protocols(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for await (const item of container.listBlobsFlat({ includeMetadata: true })) {
      const data = parseEncryptionData(item.metadata?.['encryptiondata'] ?? '');
      out.set(item.name, `${data.protocol} ${data.wrappedContentKey.keyId}`);
    }
    return out;
  }

  /** The Python SDK reads every blob with key B alone: content, metadata and content settings as before. */
  async function pythonReadsAllWithB(): Promise<void> {
    const read = await pythonRead(
      h.azurite.connectionString,
      container.containerName,
      h.onlyBFile,
      KEY_B,
      written.map((w) => w.name),
    );
    assert.deepEqual(read.errors, {});
    for (const w of written) {
      const r = read.blobs[w.name];
      assert.ok(r, w.name);
      assert.equal(r.sha256, w.sha256, `${w.name}: content`);
      assert.equal(r.length, w.length);
      assert.deepEqual(r.metadata, w.metadata, `${w.name}: user metadata, names in their case`);
      assert.deepEqual(r, baseline.blobs[w.name], `${w.name}: as the SDK read it before (content settings included)`);
    }
  }

  it('re-wraps v1.0 blobs without reencryptV1 and re-encrypts them to v2.0 with it; the Python SDK reads them each time', async () => {
    assert.ok(written.every((w) => w.protocol === '1.0'));
    // Snapshots under A (three) and under the vector key (one), and a v1.0 blob of the vector key itself.
    for (const w of written.slice(0, 3)) await container.getBlobClient(w.name).createSnapshot();
    await putVectorBlob(container, 'vector-v1', 'blob-v1-oct-31');
    await container.getBlobClient('vector-v1').createSnapshot();
    const oldSnapshots = { [KEY_A]: 3, [VECTOR_OCT]: 1 };

    const rewrapped = await rotate({});
    assert.equal(rewrapped.status, 'completed', JSON.stringify(rewrapped.failures));
    assert.equal(rewrapped.reencryptV1, false);
    assert.deepEqual(rewrapped.counts, {
      scanned: COUNT + 1,
      rewrapped: COUNT + 1,
      alreadyCurrent: 0,
      legacyV1: COUNT + 1,
      reencrypted: 0,
      gone: 0,
      failed: 0,
    });
    assert.deepEqual(rewrapped.snapshotsUnderOldKeys, oldSnapshots);
    for (const [name, state] of await protocols()) assert.equal(state, `1.0 ${KEY_B}`, name);
    await pythonReadsAllWithB();

    // Tags and a snapshot under B (the coming target: not an old key) before re-encrypting.
    await container.getBlobClient(written[3]?.name ?? '').setTags({ migrated: 'soon' });
    await container.getBlobClient(written[4]?.name ?? '').createSnapshot();

    const bad = await h.post({ containers: [container.containerName], tables: [], reencryptV1: 'yes' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'InvalidRequest');

    const reencrypted = await rotate({ reencryptV1: true });
    assert.equal(reencrypted.status, 'completed', JSON.stringify(reencrypted.failures));
    assert.equal(reencrypted.reencryptV1, true);
    assert.deepEqual(reencrypted.counts, {
      scanned: COUNT + 1,
      rewrapped: 0,
      alreadyCurrent: 0,
      legacyV1: 0,
      reencrypted: COUNT + 1,
      gone: 0,
      failed: 0,
    });
    assert.deepEqual(reencrypted.snapshotsUnderOldKeys, oldSnapshots, 'the snapshot under B is not under an old key');
    for (const [name, state] of await protocols()) assert.equal(state, `2.0 ${KEY_B}`, name);
    await pythonReadsAllWithB();
    assert.deepEqual((await container.getBlobClient(written[3]?.name ?? '').getTags()).tags, { migrated: 'soon' });

    const again = await rotate({ reencryptV1: true });
    assert.deepEqual(again.counts, { ...reencrypted.counts, reencrypted: 0, alreadyCurrent: COUNT + 1 });
  });
});
