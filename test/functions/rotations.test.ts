/**
 * The rotation API and workers through the local Functions host (HTTP routes, the `rotation-jobs` queue listener
 * and its poison queue) on Azurite: the contract of POST/GET, a second start while one runs, a disallowed key id,
 * a blob deleted between sweep and work item, redelivered work items, and a work item that keeps failing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { encryptBlob } from '../../shared/crypto/blobEncryption';
import { RotationService } from '../../shared/rotation/rotationService';
import type { RotationCounts } from '../../shared/rotation/types';
import { EncryptedTableClient } from '../../shared/tables/encryptedTableClient';
import { getProperty, properties, tv } from '../../shared/tables/entityModel';
import { patternPlaintext } from '../helpers/vectors';
import {
  KEY_B,
  containerName,
  putEncryptedBlob,
  readBlob,
  rotationDeps,
  sha256,
  tableName,
} from '../shared/rotation/harness';
import { defaultHostJson, startRotationHost, sweepOnly, type RotationHost } from './rotationsHarness';

const UNREACHABLE_VAULT = 'nothere.vault.azure.net';

function counts(c: Partial<RotationCounts>): RotationCounts {
  return { scanned: 0, rewrapped: 0, alreadyCurrent: 0, legacyV1: 0, reencrypted: 0, gone: 0, failed: 0, ...c };
}

describe('rotations through the local host', () => {
  let h: RotationHost;

  before(async () => {
    const hostJson = defaultHostJson() as { extensions: { queues: Record<string, unknown> } };
    hostJson.extensions.queues['maxDequeueCount'] = 2;
    h = await startRotationHost({ hostJson, env: { CSE_ALLOWED_KEY_VAULTS: UNREACHABLE_VAULT } });
  });
  after(() => h?.stop());

  async function blobs(
    prefix: string,
    n: number,
    kek = h.keys.a,
  ): Promise<{ container: ContainerClient; sha: Map<string, string> }> {
    const container = h.clients.blobService.getContainerClient(containerName(prefix));
    await container.create();
    const sha = new Map<string, string>();
    for (let i = 0; i < n; i++) {
      const name = `f${String(i).padStart(3, '0')}`;
      const plaintext = patternPlaintext(10 + i * 37);
      await putEncryptedBlob(container, name, plaintext, kek, i % 2 ? { metadata: { Keep: `m${i}` } } : {});
      sha.set(name, sha256(plaintext));
    }
    return { container, sha };
  }

  async function setKeyId(container: ContainerClient, name: string, keyId: string): Promise<void> {
    const blob = container.getBlobClient(name);
    const doc = JSON.parse((await blob.getProperties()).metadata?.['encryptiondata'] ?? '');
    doc.WrappedContentKey.KeyId = keyId;
    await blob.setMetadata({ encryptiondata: JSON.stringify(doc) });
  }

  it('POST 202 {id}; GET follows it to completion with exact counts and the documented shape; GET /api/rotations lists it', async () => {
    const { container, sha } = await blobs('api', 15);
    await putEncryptedBlob(container, 'current-1', Buffer.from('b1'), h.keys.b);
    await putEncryptedBlob(container, 'current-2', Buffer.from('b2'), h.keys.b);
    await container.getBlockBlobClient('plain').upload('p', 1);
    // A blob with a known content key, to check below that no log line ever shows it.
    const cek = randomBytes(32);
    const known = await encryptBlob(h.keys.a, Buffer.from('known key'), { cek });
    await container.getBlockBlobClient('known-cek').upload(known.ciphertext, known.ciphertext.length, {
      metadata: { encryptiondata: known.metadataValue },
    });
    await putEncryptedBlob(container, 'foreign', Buffer.from('f'), h.keys.a);
    await setKeyId(container, 'foreign', 'https://evil.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef');
    const table = tableName('api');
    const raw = h.clients.tableClient(table);
    await raw.createTable();
    const v2 = new EncryptedTableClient(raw, { kek: h.keys.a, resolver: h.keys.ring.resolver });
    const v1 = new EncryptedTableClient(
      raw,
      { kek: h.keys.a, resolver: h.keys.ring.resolver },
      { protocol: '1.0', allowV1: true },
    );
    for (let i = 0; i < 7; i++) {
      await (i < 5 ? v2 : v1).insert(
        { partitionKey: 'p', rowKey: `r${i}`, properties: properties([['s', tv.string(`v${i}`)]]) },
        { encrypt: ['s'] },
      );
    }

    const res = await h.post({ containers: [container.containerName], tables: [table] });
    assert.equal(res.status, 202);
    const body = (await res.json()) as { id: string };
    assert.deepEqual(Object.keys(body), ['id']);
    assert.equal(res.headers.get('location'), `/api/rotations/${body.id}`);

    const view = await h.waitFinished(body.id);
    assert.deepEqual(Object.keys(view), [
      'id',
      'targetKeyId',
      'status',
      'scope',
      'reencryptV1',
      'counts',
      'snapshotsUnderOldKeys',
      'failures',
      'startedAt',
      'finishedAt',
    ]);
    assert.equal(view.id, body.id);
    assert.equal(view.targetKeyId, KEY_B, 'default target: CSE_KEY_ID');
    assert.equal(view.status, 'completedWithFailures');
    assert.deepEqual(view.scope, { containers: [container.containerName], tables: [table] });
    assert.deepEqual(
      view.counts,
      counts({ scanned: 19 + 7, rewrapped: 16 + 7, alreadyCurrent: 2, legacyV1: 2, failed: 1 }),
    );
    assert.deepEqual(view.failures.length, 1);
    assert.equal(view.failures[0]?.object, `blob:${container.containerName}/foreign`);
    assert.match(view.failures[0]?.reason ?? '', /^KeyNotAllowed: /);
    assert.ok(
      !Number.isNaN(Date.parse(view.startedAt)) &&
        view.finishedAt !== null &&
        Date.parse(view.finishedAt) >= Date.parse(view.startedAt),
    );

    for (const [name, digest] of sha) {
      const read = await readBlob(container, name, h.keys.onlyB);
      assert.equal(sha256(read.plaintext), digest, name);
    }
    const reader = new EncryptedTableClient(raw, { kek: h.keys.b, resolver: h.keys.onlyB.resolver }, { allowV1: true });
    for (let i = 0; i < 7; i++)
      assert.deepEqual(getProperty((await reader.get('p', `r${i}`)).properties, 's'), tv.string(`v${i}`));

    assert.equal((await readBlob(container, 'known-cek', h.keys.onlyB)).plaintext.toString(), 'known key');
    const logs = h.host().logs.join('\n');
    for (const secret of [cek.toString('hex'), cek.toString('base64'), cek.toString('base64url')]) {
      assert.ok(!logs.includes(secret), 'no content key in the host log');
    }
    for (const jwk of (JSON.parse(h.keys.allJson) as { keys: { k?: string }[] }).keys) {
      if (jwk.k) assert.ok(!logs.includes(jwk.k), 'no key material in the host log');
    }

    const list = await fetch(h.url('/api/rotations'));
    assert.equal(list.status, 200);
    const listed = (await list.json()) as { rotations: { id: string; status: string }[] };
    assert.equal(listed.rotations[0]?.id, body.id);
    assert.equal(listed.rotations[0]?.status, 'completedWithFailures');
  });

  it('refuses a second start while one runs: 409 RotationRunning with the running id', async () => {
    const { container } = await blobs('second', 40);
    const first = await h.post({ containers: [container.containerName], targetKeyId: KEY_B });
    assert.equal(first.status, 202);
    const { id } = (await first.json()) as { id: string };
    const second = await h.post({ containers: [container.containerName] });
    assert.equal(second.status, 409);
    const refused = (await second.json()) as { error: { code: string; message: string }; id: string };
    assert.equal(refused.error.code, 'RotationRunning');
    assert.equal(refused.id, id);
    assert.equal((await h.waitFinished(id)).status, 'completed');
    const third = await h.post({ containers: [container.containerName] });
    assert.equal(third.status, 202, 'a new rotation may start once the first finished');
    const again = await h.waitFinished(((await third.json()) as { id: string }).id);
    assert.deepEqual(again.counts, counts({ scanned: 40, alreadyCurrent: 40 }));
  });

  it('answers bad requests with the API error shape and status', async () => {
    const expectError = async (res: Response, status: number, code: string): Promise<void> => {
      assert.equal(res.status, status, await res.clone().text());
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, code);
      assert.ok(body.error.message.length > 0);
    };
    await expectError(await h.post('{not json'), 400, 'InvalidRequest');
    await expectError(await h.post({ containers: 'x' }), 400, 'InvalidRequest');
    await expectError(await h.post({ scope: [] }), 400, 'InvalidRequest');
    await expectError(await h.post({ containers: ['Bad_Name'] }), 400, 'InvalidName');
    await expectError(await h.post({ containers: ['azure-webjobs-hosts'] }), 403, 'ContainerNotAllowed');
    await expectError(await h.post({ tables: ['rotations'] }), 403, 'TableNotAllowed');
    await expectError(await h.post({ targetKeyId: 'https://evil.vault.azure.net/keys/k' }), 409, 'KeyNotAllowed');
    await expectError(await h.post({ targetKeyId: 'local:no-such-key' }), 409, 'KeyNotAllowed');
    await expectError(await fetch(h.url('/api/rotations/9999999999999-00000000')), 404, 'RotationNotFound');
    await expectError(await fetch(h.url('/api/rotations/nonsense')), 404, 'RotationNotFound');
    await expectError(await fetch(h.url('/api/rotations?top=0')), 400, 'InvalidRequest');
  });

  it('counts a blob deleted between sweep and work item as gone, and re-runs redelivered work items without double counting', async () => {
    const { container, sha } = await blobs('between', 30);
    // The sweep runs while no worker does: stop the host, sweep with the library on the same storage.
    await h.killHost();
    const service = new RotationService(rotationDeps(h.azurite, { keys: h.keys, tuning: { pageSize: 10 } }));
    const { id } = await service.start({ containers: [container.containerName] });
    const pages = await sweepOnly(service, h.clients);
    assert.equal(pages.length, 3);
    await container.getBlobClient('f004').delete();
    sha.delete('f004');
    // Every work item is delivered twice (a redelivery after a lost delete, as the queue may do).
    for (const text of [...pages, ...pages]) await h.clients.jobsQueue.sendMessage(text);
    await h.startHost();
    const view = await h.waitFinished(id);
    assert.equal(view.status, 'completed');
    assert.deepEqual(view.counts, counts({ scanned: 30, rewrapped: 29, gone: 1 }));
    for (const [name, digest] of sha)
      assert.equal(sha256((await readBlob(container, name, h.keys.onlyB)).plaintext), digest);
    // The duplicates ran (or were found recorded) without changing anything.
    await waitForQueueEmpty();
    assert.deepEqual((await h.get(id)).counts, view.counts);
  });

  it('moves a work item that keeps failing (Key Vault unreachable) to poison and records its objects, not loses them', async () => {
    const { container, sha } = await blobs('poison', 8);
    await putEncryptedBlob(container, 'vault-blob', Buffer.from('v'), h.keys.a);
    await setKeyId(container, 'vault-blob', `https://${UNREACHABLE_VAULT}/keys/k/0123456789abcdef0123456789abcdef`);
    const res = await h.post({ containers: [container.containerName] });
    const { id } = (await res.json()) as { id: string };
    const view = await h.waitFinished(id, 180_000);
    assert.equal(view.status, 'completedWithFailures');
    assert.deepEqual(
      view.counts,
      counts({ scanned: 9, rewrapped: 8, failed: 1 }),
      'the page re-wrapped its other blobs before failing',
    );
    assert.equal(view.failures[0]?.object, `blob:${container.containerName}/vault-blob`);
    assert.match(view.failures[0]?.reason ?? '', /^WorkItemFailed: .*KeyUnavailable/);
    assert.ok(
      h.host().logs.some((l) => /rotation-jobs-poison/.test(l)),
      'moved to the poison queue by the host',
    );
    for (const [name, digest] of sha)
      assert.equal(sha256((await readBlob(container, name, h.keys.onlyB)).plaintext), digest);
    const left = (await container.getBlobClient('vault-blob').getProperties()).metadata?.['encryptiondata'] ?? '';
    assert.match(JSON.parse(left).WrappedContentKey.KeyId, new RegExp(UNREACHABLE_VAULT), 'left as it was');
  });

  async function waitForQueueEmpty(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const props = await h.clients.jobsQueue.getProperties();
      if ((props.approximateMessagesCount ?? 0) === 0) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('rotation-jobs never drained');
  }
});
