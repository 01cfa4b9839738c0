/**
 * The ingestion procedure in-process against a private Azurite, for what a host-level test cannot time exactly:
 * a source that changes while it is read or between commit and delete, transient storage errors (503 injected
 * by a proxy in front of Azurite, retried by the Storage SDK), and every refusal that must leave the source
 * untouched.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { isCseError } from '../../../shared/errors';
import { decryptBlob } from '../../../shared/crypto/blobDecryption';
import { generateDevelopmentKeySet, loadLocalKeys, type LocalKeyRing } from '../../../shared/keys/localKeys';
import { ContainerPolicy } from '../../../shared/storage/containerPolicy';
import { Ingestion, type IngestionOptions } from '../../../shared/ingest/ingestion';
import type { BlobIngestRequest, IngestRequest } from '../../../shared/ingest/ingestRequest';
import { AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, startAzurite, type RunningAzurite } from '../../helpers/azurite';
import { contentBytes, sha256 } from '../../helpers/blobContent';
import { startStorageProxy, type ProxyDecision, type StorageProxy } from '../../helpers/storageProxy';

const MiB = 1024 * 1024;
const KEY_ID = 'local:procedure';

describe('ingestion procedure', () => {
  let azurite: RunningAzurite;
  let proxy: StorageProxy;
  let direct: BlobServiceClient;
  let viaProxy: BlobServiceClient;
  let keys: LocalKeyRing;
  let dir: string;
  let counter = 0;

  before(async () => {
    azurite = await startAzurite();
    proxy = await startStorageProxy(azurite.blobEndpoint);
    const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT_NAME, AZURITE_ACCOUNT_KEY);
    direct = new BlobServiceClient(azurite.blobEndpoint, credential);
    // Quick retries: the SDK's default first delay is 4 s.
    viaProxy = new BlobServiceClient(proxy.blobEndpoint, credential, {
      retryOptions: { maxTries: 4, retryDelayInMs: 20, maxRetryDelayInMs: 100 },
    });
    dir = mkdtempSync(join(tmpdir(), 'cse-ingest-proc-'));
    writeFileSync(join(dir, 'keys.json'), generateDevelopmentKeySet(KEY_ID));
    keys = await loadLocalKeys(join(dir, 'keys.json'));
    await direct.getContainerClient('landing').createIfNotExists();
  });
  after(async () => {
    await proxy?.close();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    proxy.rule = () => 'forward';
    proxy.seen.length = 0;
  });

  function ingestion(options: IngestionOptions = {}, containers = new ContainerPolicy('*')): Ingestion {
    return new Ingestion(
      { blobService: viaProxy, containers, activeKey: async () => keys.get(KEY_ID)! },
      { ...options },
    );
  }

  function unique(prefix: string): string {
    return `${prefix}-${++counter}.bin`;
  }

  async function drop(name: string, data: Buffer, metadata: Record<string, string> = {}): Promise<string> {
    const r = await direct.getContainerClient('landing').getBlockBlobClient(name).uploadData(data, { metadata });
    return r.etag!;
  }

  function request(name: string, extra: Partial<BlobIngestRequest> = {}): IngestRequest {
    return {
      kind: 'blob',
      form: 'source',
      envelope: false,
      source: { container: 'landing', name },
      target: { container: 'encrypted', name },
      deleteSource: true,
      ...extra,
    };
  }

  async function plaintextOf(container: string, name: string): Promise<Buffer> {
    const blob = direct.getContainerClient(container).getBlobClient(name);
    const props = await blob.getProperties();
    return decryptBlob(props.metadata!.encryptiondata!, await blob.downloadToBuffer(), keys, { allowV1: false });
  }

  async function sourceExists(name: string): Promise<boolean> {
    return direct.getContainerClient('landing').getBlobClient(name).exists();
  }

  async function assertRejects(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
    await assert.rejects(promise, (e: unknown) => {
      assert.ok(isCseError(e), `expected a CseError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      if (message) assert.match(e.message, message);
      return true;
    });
  }

  it('does not delete a source that changed between commit and delete; the next attempt ingests the new version', async () => {
    const name = unique('changed-late');
    const first = contentBytes('v1', 0, 5 * MiB);
    const second = contentBytes('v2', 0, 1000);
    const firstEtag = await drop(name, first);
    const run = ingestion({
      onStep: async (point) => {
        if (point === 'after-commit') await drop(name, second);
      },
    });
    await assertRejects(run.ingest(request(name)), 'ConditionNotMet', /changed after it was read/);
    assert.equal(await sourceExists(name), true, 'the changed source is kept');
    const target = await direct.getContainerClient('encrypted').getBlobClient(name).getProperties();
    assert.equal(target.metadata?.cse_ingest_source_etag, firstEtag);
    assert.equal(sha256(await plaintextOf('encrypted', name)), sha256(first));

    const outcome = await ingestion().ingest(request(name));
    assert.equal(outcome.action, 'encrypted');
    assert.equal(outcome.sourceDeleted, true);
    assert.equal(sha256(await plaintextOf('encrypted', name)), sha256(second));
    assert.equal(await sourceExists(name), false);
  });

  it('commits nothing and deletes nothing when the source changes while it is being read', async () => {
    const name = unique('changed-early');
    await drop(name, contentBytes('old', 0, 3 * MiB));
    let overwritten = false;
    proxy.rule = async (r): Promise<ProxyDecision> => {
      if (r.method === 'GET' && r.url.includes(`/landing/${name}`) && !overwritten) {
        overwritten = true;
        await drop(name, contentBytes('new', 0, 3 * MiB)); // lands between the properties and the GET
      }
      return 'forward';
    };
    await assertRejects(
      ingestion().ingest(request(name)),
      'ConditionNotMet',
      /changed or was deleted while it was being read/,
    );
    assert.ok(overwritten);
    assert.equal(await direct.getContainerClient('encrypted').getBlobClient(name).exists(), false, 'no target');
    assert.equal(await sourceExists(name), true, 'source kept');
  });

  it('retries transient storage errors (503 on the read, a staged block, the commit and the delete)', async () => {
    const name = unique('transient');
    const data = contentBytes('transient', 0, 9 * MiB);
    await drop(name, data);
    const failedOnce = new Set<string>();
    proxy.rule = (r) => {
      const kind =
        r.method === 'GET' && r.url.includes('/landing/')
          ? 'read'
          : r.url.includes('comp=block&') || r.url.includes('comp=block?')
            ? 'stage'
            : r.url.includes('comp=blocklist')
              ? 'commit'
              : r.method === 'DELETE'
                ? 'delete'
                : undefined;
      if (kind !== undefined && !failedOnce.has(kind)) {
        failedOnce.add(kind);
        return { status: 503, code: 'ServerBusy' };
      }
      return 'forward';
    };
    const outcome = await ingestion().ingest(request(name));
    assert.deepEqual([...failedOnce].sort(), ['commit', 'delete', 'read', 'stage']);
    assert.equal(outcome.sourceDeleted, true);
    assert.equal(sha256(await plaintextOf('encrypted', name)), sha256(data));
  });

  it('fails a source that is still failing after the retries, with nothing committed or deleted', async () => {
    const name = unique('down');
    await drop(name, contentBytes('down', 0, 1000));
    proxy.rule = (r) => (r.url.includes('comp=blocklist') ? { status: 503, code: 'ServerBusy' } : 'forward');
    await assert.rejects(
      ingestion().ingest(request(name)),
      (e: unknown) => (e as { statusCode?: number }).statusCode === 503,
    );
    assert.equal(await sourceExists(name), true);
    assert.equal(await direct.getContainerClient('encrypted').getBlobClient(name).exists(), false);
  });

  it('refuses a target that is the source itself', async () => {
    const name = unique('self');
    await drop(name, Buffer.from('x'));
    await assertRejects(
      ingestion().ingest(request(name, { target: { container: 'landing', name } })),
      'InvalidMessage',
      /is the source itself/,
    );
    assert.equal(await sourceExists(name), true);
  });

  it('refuses containers outside CSE_CONTAINERS for the source as well as the target', async () => {
    const name = unique('policy');
    await drop(name, Buffer.from('x'));
    const onlyEncrypted = new ContainerPolicy(['encrypted']);
    await assertRejects(ingestion({}, onlyEncrypted).ingest(request(name)), 'ContainerNotAllowed', /^source: /);
    assert.equal(await sourceExists(name), true);
  });

  it('refuses source metadata that would not fit beside the encryption data (8 KiB), keeping the source', async () => {
    const name = unique('bigmeta');
    await drop(name, Buffer.from('x'), { notes: 'n'.repeat(7900) });
    await assertRejects(ingestion().ingest(request(name)), 'MetadataTooLarge');
    assert.equal(await sourceExists(name), true);
    assert.equal(await direct.getContainerClient('encrypted').getBlobClient(name).exists(), false);
  });

  it('refuses to pass off a source with unreadable encryption data as an encrypted target', async () => {
    const name = unique('garbage');
    await drop(name, Buffer.from('ciphertext?'), { encryptiondata: '{"not":"encryption data"}' });
    await assertRejects(ingestion().ingest(request(name)), 'InvalidEncryptionData');
    assert.equal(await sourceExists(name), true);
  });

  it('reports a missing source as BlobNotFound unless the target records it', async () => {
    const name = unique('missing');
    await assertRejects(ingestion().ingest(request(name)), 'BlobNotFound', /does not exist either/);
    // A target that exists but came from elsewhere does not count.
    await direct.getContainerClient('encrypted').getBlockBlobClient(name).uploadData(Buffer.from('other'));
    await assertRejects(ingestion().ingest(request(name)), 'BlobNotFound', /does not record it/);
  });

  it('keeps an inline target stored for the same payload, and replaces it for a different one', async () => {
    const target = { container: 'encrypted', name: unique('inline') };
    const inline = (content: Buffer): IngestRequest => ({
      kind: 'inline',
      form: 'inline',
      envelope: false,
      content,
      target,
      contentType: 'text/plain',
      metadata: {},
    });
    const first = await ingestion().ingest(inline(Buffer.from('hello')));
    const again = await ingestion().ingest(inline(Buffer.from('hello')));
    assert.equal(again.action, 'alreadyIngested');
    assert.equal(again.target.etag, first.target.etag);
    const changed = await ingestion().ingest(inline(Buffer.from('hello, world')));
    assert.equal(changed.action, 'encrypted');
    assert.notEqual(changed.target.etag, first.target.etag);
    assert.equal((await plaintextOf('encrypted', target.name)).toString(), 'hello, world');
  });

  it('runs at most maxConcurrentIngestions at once in a process (memory is bounded per process, not only per blob)', async () => {
    const measure = async (limit: number): Promise<number> => {
      const names = [unique('slots'), unique('slots'), unique('slots')];
      for (const name of names) await drop(name, contentBytes(name, 0, 1000));
      let active = 0;
      let peak = 0;
      const run = ingestion({
        maxConcurrentIngestions: limit,
        onStep: async (point) => {
          if (point === 'after-stage') {
            peak = Math.max(peak, ++active);
            await new Promise((resolve) => setTimeout(resolve, 150)); // long enough for the others to catch up
          }
          if (point === 'after-delete') active--;
        },
      });
      const outcomes = await Promise.all(names.map((name) => run.ingest(request(name))));
      assert.ok(outcomes.every((o) => o.sourceDeleted));
      return peak;
    };
    assert.equal(await measure(1), 1);
    assert.equal(await measure(3), 3);
  });

  it('reports size, key id, protocol and a duration', async () => {
    const name = unique('report');
    await drop(name, contentBytes('r', 0, 4 * MiB + 1));
    let t = 1000;
    const outcome = await ingestion({ now: () => (t += 7) }).ingest(request(name));
    assert.deepEqual(
      { size: outcome.size, keyId: outcome.keyId, protocol: outcome.protocol, durationMs: outcome.durationMs },
      { size: 4 * MiB + 1, keyId: KEY_ID, protocol: '2.0', durationMs: 7 },
    );
  });
});
