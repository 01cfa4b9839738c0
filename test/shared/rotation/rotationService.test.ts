/**
 * The rotation engine end to end against Azurite, with the `rotation-jobs` queue driven like the Functions host
 * drives it (harness.ts `pump`): exact counts, resumable sweeps, redelivered and duplicated jobs, workers killed
 * at random points, poison work items, objects deleted between sweep and work item, and the lifecycle.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { HttpClient } from '@azure/core-rest-pipeline';
import type { ContainerClient } from '@azure/storage-blob';
import { CseError, isCseError } from '../../../shared/errors';
import type { KeyResolver } from '../../../shared/keys/kek';
import type { RotationDeps, RotationTuning } from '../../../shared/rotation/context';
import { RotationRunningError, RotationService, parseStartRequest } from '../../../shared/rotation/rotationService';
import type { RotationCounts, RotationView } from '../../../shared/rotation/types';
import { properties, tv, getProperty } from '../../../shared/tables/entityModel';
import { EncryptedTableClient } from '../../../shared/tables/encryptedTableClient';
import { startAzurite, type RunningAzurite } from '../../helpers/azurite';
import { loadManifest, patternPlaintext } from '../../helpers/vectors';
import {
  KEY_A,
  KEY_B,
  containerName,
  eachLimit,
  pump,
  putEncryptedBlob,
  putVectorBlob,
  readBlob,
  rotationDeps,
  scopePolicy,
  sha256,
  storageClients,
  tableName,
  testKeys,
  type Fault,
  type PumpOptions,
  type StorageClients,
  type TestKeys,
} from './harness';

interface BlobFixture {
  readonly name: string;
  readonly plainSha: string;
  readonly storedSha: string;
}

describe('RotationService (Azurite, host-like queue driver)', () => {
  let azurite: RunningAzurite;
  let keys: TestKeys;
  let clients: StorageClients;

  before(async () => {
    azurite = await startAzurite();
    keys = await testKeys();
    clients = storageClients(azurite);
  });
  after(() => azurite?.stop());

  const baseTuning: Partial<RotationTuning> = { pageSize: 7, sweepPagesPerStep: 2 };

  function depsFactory(tuning: Partial<RotationTuning> = baseTuning, resolver?: KeyResolver) {
    return (httpClient?: HttpClient): RotationDeps => {
      const deps = rotationDeps(azurite, { keys, tuning, ...(httpClient ? { httpClient } : {}), concurrency: 4 });
      return resolver
        ? {
            ...deps,
            keys: { ...keys.ring, resolver, activeKey: keys.ring.activeKey, keyForWriting: keys.ring.keyForWriting },
          }
        : deps;
    };
  }

  async function run(
    service: RotationService,
    request: Parameters<RotationService['start']>[0],
    options: Partial<PumpOptions> & { deps?: PumpOptions['deps'] } = {},
  ): Promise<{ view: RotationView; stats: Awaited<ReturnType<typeof pump>> }> {
    const { id } = await service.start(request);
    const stats = await pump({ deps: options.deps ?? depsFactory(), clients, ...options });
    return { view: await service.get(id), stats };
  }

  /** n blobs under key A, some with metadata and headers; returns what must hold afterwards. */
  async function makeBlobs(container: ContainerClient, n: number, prefix = 'b'): Promise<BlobFixture[]> {
    await container.createIfNotExists();
    const out: BlobFixture[] = [];
    await eachLimit(
      Array.from({ length: n }, (_, i) => i),
      8,
      async (i) => {
        const name = `${prefix}/${String(i).padStart(4, '0')}.bin`;
        const plaintext = patternPlaintext(1 + ((i * 997) % 5000));
        await putEncryptedBlob(container, name, plaintext, keys.a, {
          ...(i % 3 === 0 ? { metadata: { Owner: `user${i}`, tag: 'x' } } : {}),
          ...(i % 4 === 0 ? { contentType: 'text/plain', cacheControl: 'no-cache' } : {}),
        });
        const stored = await container.getBlobClient(name).downloadToBuffer();
        out.push({ name, plainSha: sha256(plaintext), storedSha: sha256(stored) });
      },
    );
    return out;
  }

  async function assertAllUnderB(container: ContainerClient, fixtures: readonly BlobFixture[]): Promise<void> {
    for (const f of fixtures) {
      const read = await readBlob(container, f.name, keys.onlyB);
      assert.equal(read.keyId, KEY_B, f.name);
      assert.equal(sha256(read.stored), f.storedSha, `${f.name}: stored bytes unchanged`);
      assert.equal(sha256(read.plaintext), f.plainSha, `${f.name}: decrypts with key B alone`);
    }
  }

  function counts(c: Partial<RotationCounts>): RotationCounts {
    return { scanned: 0, rewrapped: 0, alreadyCurrent: 0, legacyV1: 0, reencrypted: 0, gone: 0, failed: 0, ...c };
  }

  it("rotates blobs (ours and the Python SDK's, v1 and v2) and entities (2.0 and 1.0) to key B with exact counts", async () => {
    const service = new RotationService(depsFactory()());
    const c1 = clients.blobService.getContainerClient(containerName('full'));
    const c2 = clients.blobService.getContainerClient(containerName('empty'));
    await c2.create();
    const fixtures = await makeBlobs(c1, 40);
    const manifest = loadManifest();
    for (const id of ['blob-v1-oct-16', 'blob-v1-rsa-31', 'blob-v2-oct-31', 'blob-v2-rsa-31']) {
      const stored = await putVectorBlob(c1, `python/${id}`, id);
      const vector = manifest.blob.find((v) => v.id === id);
      fixtures.push({ name: `python/${id}`, plainSha: vector?.plaintext.sha256 ?? '', storedSha: sha256(stored) });
    }
    // Already current, and plaintext (not part of a rotation).
    await putEncryptedBlob(c1, 'current/1', Buffer.from('one'), keys.b);
    await putEncryptedBlob(c1, 'current/2', Buffer.from('two'), keys.b);
    await c1.getBlockBlobClient('plain.txt').upload('plain', 5);

    const t1 = tableName('rot');
    const raw = clients.tableClient(t1);
    await raw.createTable();
    const v2 = new EncryptedTableClient(raw, { kek: keys.a, resolver: keys.ring.resolver });
    const v1 = new EncryptedTableClient(
      raw,
      { kek: keys.a, resolver: keys.ring.resolver },
      { protocol: '1.0', allowV1: true },
    );
    const underB = new EncryptedTableClient(raw, { kek: keys.b, resolver: keys.ring.resolver });
    for (let i = 0; i < 20; i++) {
      const client = i < 14 ? v2 : i < 18 ? v1 : underB;
      await client.insert(
        {
          partitionKey: `p${i % 3}`,
          rowKey: `r${i}`,
          properties: properties([
            ['secret', tv.string(`secret ${i}`)],
            ['n', tv.int32(i)],
          ]),
        },
        { encrypt: ['secret'] },
      );
    }
    await raw.createEntity({ partitionKey: 'p0', rowKey: 'plain', x: 'y' });

    const { view, stats } = await run(service, { containers: [c1.containerName, c2.containerName], tables: [t1] });
    assert.equal(view.status, 'completed');
    assert.deepEqual(view.counts, counts({ scanned: 46 + 20, rewrapped: 44 + 18, alreadyCurrent: 4, legacyV1: 2 + 4 }));
    assert.deepEqual(view.failures, []);
    assert.equal(view.targetKeyId, KEY_B);
    assert.deepEqual(view.scope, { containers: [c1.containerName, c2.containerName], tables: [t1] });
    assert.ok(view.finishedAt !== null && view.finishedAt >= view.startedAt);
    assert.ok((stats.byKind['sweep'] ?? 0) > 5, 'the sweep handed on to new messages (resumable)');
    assert.ok((stats.byKind['page'] ?? 0) >= Math.ceil(44 / 7), 'one work item per page');

    await assertAllUnderB(c1, fixtures);
    const reader = new EncryptedTableClient(raw, { kek: keys.b, resolver: keys.onlyB.resolver }, { allowV1: true });
    for (let i = 0; i < 20; i++) {
      const e = await reader.get(`p${i % 3}`, `r${i}`);
      assert.deepEqual(getProperty(e.properties, 'secret'), tv.string(`secret ${i}`));
      assert.equal(e.encryption?.keyId, KEY_B);
    }
    const listed = await service.list();
    assert.equal(listed[0]?.id, view.id, 'listed, newest first');
  });

  it('refuses a second start while one runs (409 RotationRunning with its id); the lock is released at the end', async () => {
    const service = new RotationService(depsFactory()());
    const c = clients.blobService.getContainerClient(containerName('lock'));
    await makeBlobs(c, 3);
    const { id } = await service.start({ containers: [c.containerName] });
    await assert.rejects(
      service.start({ containers: [c.containerName] }),
      (e) => e instanceof RotationRunningError && e.runningId === id && e.code === 'RotationRunning',
    );
    assert.equal((await service.get(id)).status, 'running');
    await pump({ deps: depsFactory(), clients });
    assert.equal((await service.get(id)).status, 'completed');
    const { id: second } = await service.start({ containers: [c.containerName] });
    assert.notEqual(second, id);
    await pump({ deps: depsFactory(), clients });
    const again = await service.get(second);
    assert.deepEqual(again.counts, counts({ scanned: 3, alreadyCurrent: 3 }));
  });

  it('keeps exact counts when every job is delivered twice and some deliveries die before or after running', async () => {
    const c = clients.blobService.getContainerClient(containerName('redeliver'));
    const fixtures = await makeBlobs(c, 30);
    const fault = (_job: unknown, dequeueCount: number): Fault | undefined =>
      dequeueCount === 1
        ? { kind: 'killAfter' }
        : dequeueCount === 2 && Math.random() < 0.3
          ? { kind: 'killBefore' }
          : undefined;
    const { view, stats } = await run(
      new RotationService(depsFactory()()),
      { containers: [c.containerName] },
      { fault, leaseSeconds: 1 },
    );
    assert.ok(stats.kills >= stats.deliveries / 2 - 1, 'each job ran at least twice');
    assert.equal(view.status, 'completed');
    assert.deepEqual(view.counts, counts({ scanned: 30, rewrapped: 30 }));
    await assertAllUnderB(c, fixtures);
  });

  it('keeps exact counts and every object decryptable when workers die at random points (mid-page, mid-sweep, mid-record)', async () => {
    const c = clients.blobService.getContainerClient(containerName('killed'));
    const fixtures = await makeBlobs(c, 45);
    const t = tableName('killed');
    const raw = clients.tableClient(t);
    await raw.createTable();
    const writer = new EncryptedTableClient(raw, { kek: keys.a, resolver: keys.ring.resolver });
    for (let i = 0; i < 15; i++) {
      await writer.insert(
        {
          partitionKey: 'p',
          rowKey: `r${String(i).padStart(2, '0')}`,
          properties: properties([['s', tv.string(`v${i}`)]]),
        },
        { encrypt: ['s'] },
      );
    }
    // Seeded, so a run that kills too few workers to prove anything cannot happen by chance: every job's first
    // two deliveries die after a pseudo-random number of Storage requests (0 to 24).
    const random = seededRandom(0x5eed);
    const fault = (_job: unknown, dequeueCount: number): Fault | undefined =>
      dequeueCount <= 2 ? { kind: 'killAfterRequests', requests: Math.floor(random() * 25) } : undefined;
    const { view, stats } = await run(
      new RotationService(depsFactory()()),
      { containers: [c.containerName], tables: [t] },
      { fault, leaseSeconds: 1 },
    );
    assert.ok(stats.kills >= 5, `workers were killed (${stats.kills})`);
    assert.equal(view.status, 'completed', JSON.stringify(view));
    assert.deepEqual(view.counts, counts({ scanned: 60, rewrapped: 60 }));
    await assertAllUnderB(c, fixtures);
    const reader = new EncryptedTableClient(raw, { kek: keys.b, resolver: keys.onlyB.resolver });
    for (let i = 0; i < 15; i++) {
      assert.deepEqual(
        getProperty((await reader.get('p', `r${String(i).padStart(2, '0')}`)).properties, 's'),
        tv.string(`v${i}`),
      );
    }
  });

  it('counts a blob deleted between sweep and work item as gone, and one with a disallowed key id as a failure', async () => {
    const c = clients.blobService.getContainerClient(containerName('gone'));
    const fixtures = await makeBlobs(c, 10);
    const foreign = c.getBlobClient('zz-foreign');
    await putEncryptedBlob(c, 'zz-foreign', Buffer.from('x'), keys.a);
    const doc = JSON.parse((await foreign.getProperties()).metadata?.['encryptiondata'] ?? '');
    doc.WrappedContentKey.KeyId = 'https://evil.vault.azure.net/keys/k/00000000000000000000000000000000';
    await foreign.setMetadata({ encryptiondata: JSON.stringify(doc) });
    const victim = fixtures[0]?.name ?? '';
    let deleted = false;
    const beforeJob = async (job: { kind: string; item?: string }): Promise<void> => {
      if (job.kind === 'page' && !deleted && job.item?.includes(`:${c.containerName}:000000000:`)) {
        deleted = true;
        await c.getBlobClient(victim).delete();
      }
    };
    const { view } = await run(new RotationService(depsFactory()()), { containers: [c.containerName] }, { beforeJob });
    assert.ok(deleted);
    assert.equal(view.status, 'completedWithFailures');
    assert.deepEqual(view.counts, counts({ scanned: 11, rewrapped: 9, gone: 1, failed: 1 }));
    assert.equal(view.failures.length, 1);
    assert.equal(view.failures[0]?.object, `blob:${c.containerName}/zz-foreign`);
    assert.match(view.failures[0]?.reason ?? '', /^KeyNotAllowed: /);
    await assertAllUnderB(c, fixtures.slice(1));
  });

  it('records a work item that keeps failing (poison): objects it did re-wrap count, the rest are failures', async () => {
    const c = clients.blobService.getContainerClient(containerName('poison'));
    const fixtures = await makeBlobs(c, 6);
    // A blob whose key's service is down for good: its page fails on every delivery.
    await putEncryptedBlob(c, 'b/0003x', Buffer.from('x'), keys.a);
    const flaky = c.getBlobClient('b/0003x');
    const doc = JSON.parse((await flaky.getProperties()).metadata?.['encryptiondata'] ?? '');
    doc.WrappedContentKey.KeyId = 'local:flaky';
    await flaky.setMetadata({ encryptiondata: JSON.stringify(doc) });
    const resolver: KeyResolver = {
      resolve: async (kid) => {
        if (kid === 'local:flaky') throw new CseError('KeyUnavailable', 'the key service does not answer');
        return keys.ring.resolver.resolve(kid);
      },
    };
    const deps = depsFactory({ pageSize: 50 }, resolver);
    const service = new RotationService(deps());
    const { view, stats } = await run(service, { containers: [c.containerName] }, { deps });
    assert.equal(stats.poisoned, 1);
    assert.equal(stats.poisonHandled, 1);
    assert.equal(view.status, 'completedWithFailures');
    assert.deepEqual(view.counts, counts({ scanned: 7, rewrapped: 6, failed: 1 }));
    assert.equal(view.failures[0]?.object, `blob:${c.containerName}/b/0003x`);
    assert.match(view.failures[0]?.reason ?? '', /^WorkItemFailed: .*KeyUnavailable/);
    await assertAllUnderB(c, fixtures);
  });

  it('accounts for a work item whose worker dies on every delivery (moved to poison unprocessed)', async () => {
    const c = clients.blobService.getContainerClient(containerName('dies'));
    await makeBlobs(c, 4);
    const fault = (job: { kind: string }): Fault | undefined =>
      job.kind === 'page' ? { kind: 'killBefore' } : undefined;
    const { view, stats } = await run(
      new RotationService(depsFactory()()),
      { containers: [c.containerName] },
      { fault, leaseSeconds: 1, maxDequeueCount: 2 },
    );
    assert.equal(stats.poisoned, 1);
    assert.equal(view.status, 'completedWithFailures');
    assert.deepEqual(view.counts, counts({ scanned: 4, failed: 4 }));
    assert.equal(view.failures.length, 4);
    for (const f of view.failures) assert.match(f.reason, /^WorkItemFailed: the work item failed on every delivery$/);
  });

  it('ends as failed when its only unit cannot be listed, or its start step keeps failing', async () => {
    const c = clients.blobService.getContainerClient(containerName('nolist'));
    await makeBlobs(c, 2);
    const sweepDies = (job: { kind: string }): Fault | undefined =>
      job.kind === 'sweep' ? { kind: 'killBefore' } : undefined;
    const first = await run(
      new RotationService(depsFactory()()),
      { containers: [c.containerName] },
      { fault: sweepDies, leaseSeconds: 1, maxDequeueCount: 2 },
    );
    assert.equal(first.view.status, 'failed');
    assert.deepEqual(first.view.failures, [
      {
        object: `container:${c.containerName}`,
        reason: 'ListingFailed: the container could not be listed (its sweep kept failing)',
      },
    ]);

    const startDies = (job: { kind: string }): Fault | undefined =>
      job.kind === 'start' ? { kind: 'killBefore' } : undefined;
    const second = await run(
      new RotationService(depsFactory()()),
      { containers: [c.containerName] },
      { fault: startDies, leaseSeconds: 1, maxDequeueCount: 2 },
    );
    assert.equal(second.view.status, 'failed');
    assert.match(second.view.failures[0]?.reason ?? '', /^StartFailed: /);
    assert.equal(second.view.failures[0]?.object, 'rotation');
  });

  it('completes an empty scope, and validates what it is asked', async () => {
    const service = new RotationService(depsFactory()());
    const { view } = await run(service, { containers: [], tables: [] });
    assert.equal(view.status, 'completed');
    assert.deepEqual(view.counts, counts({}));

    const restricted = new RotationService({ ...depsFactory()(), policy: scopePolicy(['allowed'], ['Allowed']) });
    await assert.rejects(restricted.start({ containers: ['other'] }), (e) => isCseError(e, 'ContainerNotAllowed'));
    await assert.rejects(restricted.start({ tables: ['Other'] }), (e) => isCseError(e, 'TableNotAllowed'));
    await assert.rejects(restricted.start({ containers: ['Bad_Name'] }), (e) => isCseError(e, 'InvalidName'));
    await assert.rejects(service.start({ tables: ['rotations'] }), (e) => isCseError(e, 'TableNotAllowed'));
    await assert.rejects(service.start({ targetKeyId: 'https://evil.vault.azure.net/keys/k' }), (e) =>
      isCseError(e, 'KeyNotAllowed'),
    );
    await assert.rejects(service.get('no-such-rotation'), (e) => isCseError(e, 'RotationNotFound'));
    await assert.rejects(service.get('0000000000000-00000000'), (e) => isCseError(e, 'RotationNotFound'));

    assert.deepEqual(parseStartRequest(undefined), {});
    assert.deepEqual(parseStartRequest({ targetKeyId: KEY_A, containers: ['a', 'a'], tables: [] }), {
      targetKeyId: KEY_A,
      containers: ['a'],
      tables: [],
    });
    for (const bad of [[], 'x', { containers: 'a' }, { tables: [1] }, { targetKeyId: '' }, { extra: 1 }]) {
      assert.throws(
        () => parseStartRequest(bad),
        (e) => isCseError(e, 'InvalidRequest'),
        JSON.stringify(bad),
      );
    }
  });

  it('rotates to an explicit target and with the default scope (every allowed container and table)', async () => {
    const service = new RotationService({ ...depsFactory()(), policy: scopePolicy('*', '*') });
    const { view } = await run(service, { targetKeyId: KEY_A });
    assert.equal(view.targetKeyId, KEY_A);
    assert.equal(view.status, 'completedWithFailures');
    assert.ok(view.scope.containers.length >= 5, 'all containers of this account');
    assert.ok(!view.scope.tables.includes('rotations'), "never the rotations' own table");
    assert.equal(view.counts.failed, 2, 'the two objects with unusable keys from earlier tests');
    assert.deepEqual(
      view.failures.map((f) => f.reason.split(':')[0]),
      ['KeyNotAllowed', 'KeyNotAllowed'],
    );
    assert.ok(view.counts.rewrapped > 100);
  });
});

/** mulberry32: a small deterministic PRNG for reproducible fault schedules. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
