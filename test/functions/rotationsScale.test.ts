/**
 * The main scenario through the local host: 1,000 blobs (mixed sizes up to two 4 MiB regions; 200 written
 * by Microsoft's Python SDK, v2.0 and v1.0; some with user metadata in mixed case and content headers) and 200
 * table entities (protocol 2.0 and legacy 1.0) under key A; one rotation to key B with the default scope.
 * Afterwards every object names key B and decrypts with key B alone (blobs also by the Python SDK), its stored
 * bytes are unchanged, its other metadata and properties are intact, and the counts are exact.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BlobGetPropertiesResponse, ContainerClient } from '@azure/storage-blob';
import type { TableClient } from '@azure/data-tables';
import { EncryptedTableClient } from '../../shared/tables/encryptedTableClient';
import { getProperty, properties, tv } from '../../shared/tables/entityModel';
import { patternPlaintext } from '../helpers/vectors';
import { KEY_A, KEY_B, eachLimit, putEncryptedBlob, readBlob, sha256 } from '../shared/rotation/harness';
import { pythonRead, pythonWrite, startRotationHost, type RotationHost } from './rotationsHarness';

const CONTAINER = 'scale';
const TABLE = 'scale';
const OURS = 800;
const PYTHON = 200;
const PYTHON_V1_EVERY = 5;
const ENTITIES = 200;
const ENTITIES_V1 = 50;

interface BlobBefore {
  readonly plainSha: string;
  readonly storedSha: string;
  readonly metadata: Record<string, string>;
  readonly properties: Record<string, unknown>;
}

const PROPERTY_NAMES = [
  'contentType',
  'contentEncoding',
  'contentLanguage',
  'contentDisposition',
  'cacheControl',
  'contentLength',
  'blobType',
  'accessTier',
  'creationTime',
] as const;

function propertiesOf(p: BlobGetPropertiesResponse): Record<string, unknown> {
  const out: Record<string, unknown> = {
    contentMD5: p.contentMD5 ? Buffer.from(p.contentMD5).toString('base64') : undefined,
  };
  const all = p as unknown as Record<string, unknown>;
  for (const name of PROPERTY_NAMES) {
    const value = all[name];
    out[name] = value instanceof Date ? value.toISOString() : value;
  }
  return out;
}

/** Metadata with the names' stored case (a listing keeps it), without encryptiondata. */
async function listedMetadata(container: ContainerClient): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  for await (const item of container.listBlobsFlat({ includeMetadata: true })) {
    const { encryptiondata: _ed, ...rest } = item.metadata ?? {};
    void _ed;
    out.set(item.name, rest);
  }
  return out;
}

describe('rotation at scale through the local host (1,000 blobs incl. Python SDK, 200 entities)', () => {
  let h: RotationHost;
  let container: ContainerClient;
  let rawTable: TableClient;
  const before_ = new Map<string, BlobBefore>();
  const pythonNames: string[] = [];
  const entitiesBefore = new Map<string, Record<string, unknown>>();

  before(async () => {
    h = await startRotationHost();
    container = h.clients.blobService.getContainerClient(CONTAINER);
    await container.create();
    const plainSha = new Map<string, string>();

    // Ours: sizes from 0 to ~20 KiB, and two of 4 MiB + 5 bytes (two regions); metadata and headers on some.
    await eachLimit(
      Array.from({ length: OURS }, (_, i) => i),
      16,
      async (i) => {
        const name = `ours/${String(i).padStart(4, '0')}`;
        const length = i < 2 ? 4 * 1024 * 1024 + 5 : (i * 104729) % 20_000;
        const plaintext = patternPlaintext(length);
        await putEncryptedBlob(container, name, plaintext, h.keys.a, {
          ...(i % 3 === 0 ? { metadata: { Department: `d${i % 7}`, lowercase: 'yes', Mixed_Case_Name: 'M' } } : {}),
          ...(i % 4 === 0
            ? {
                contentType: 'application/json',
                cacheControl: 'max-age=3600',
                contentDisposition: `attachment; filename="${i}.json"`,
                contentLanguage: 'en-GB',
                contentEncoding: 'identity',
              }
            : {}),
        });
        plainSha.set(name, sha256(plaintext));
      },
    );
    // The official Python SDK's: protocol 2.0, and 1.0 for every fifth.
    const written = await pythonWrite(h.azurite.connectionString, CONTAINER, h.allKeysFile, KEY_A, {
      count: PYTHON,
      prefix: 'python/',
      v1Every: PYTHON_V1_EVERY,
    });
    assert.equal(written.length, PYTHON);
    assert.equal(written.filter((w) => w.protocol === '1.0').length, PYTHON / PYTHON_V1_EVERY);
    for (const w of written) {
      plainSha.set(w.name, w.sha256);
      pythonNames.push(w.name);
    }

    const metadata = await listedMetadata(container);
    await eachLimit([...plainSha.keys()], 16, async (name) => {
      const blob = container.getBlobClient(name);
      const [stored, props] = await Promise.all([blob.downloadToBuffer(), blob.getProperties()]);
      before_.set(name, {
        plainSha: plainSha.get(name) ?? '',
        storedSha: sha256(stored),
        metadata: metadata.get(name) ?? {},
        properties: propertiesOf(props),
      });
    });
    assert.ok(
      [...before_.values()].some((b) => Object.keys(b.metadata).includes('PyOwner')),
      'Python wrote mixed-case names',
    );

    rawTable = h.clients.tableClient(TABLE);
    await rawTable.createTable();
    const v2 = new EncryptedTableClient(rawTable, { kek: h.keys.a, resolver: h.keys.ring.resolver });
    const v1 = new EncryptedTableClient(
      rawTable,
      { kek: h.keys.a, resolver: h.keys.ring.resolver },
      { protocol: '1.0', allowV1: true },
    );
    await eachLimit(
      Array.from({ length: ENTITIES }, (_, i) => i),
      16,
      async (i) => {
        const client = i < ENTITIES_V1 ? v1 : v2;
        await client.insert(
          {
            partitionKey: `p${i % 4}`,
            rowKey: `r${String(i).padStart(3, '0')}`,
            properties: properties([
              ['secret', tv.string(`secret value ${i} ü`)],
              ['note', tv.string(`note ${i}`)],
              ['count', tv.int32(i)],
            ]),
          },
          { encrypt: i % 2 ? ['secret', 'note'] : ['secret'] },
        );
      },
    );
    for await (const e of rawTable.listEntities()) {
      const { etag: _e, timestamp: _t, _ClientEncryptionMetadata1: _m, ...rest } = e as Record<string, unknown>;
      void _e;
      void _t;
      void _m;
      entitiesBefore.set(`${e.partitionKey}/${e.rowKey}`, rest);
    }
  });
  after(() => h?.stop());

  it('re-wraps every object to key B with exact counts, content and everything else unchanged', async () => {
    const res = await h.post();
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const view = await h.waitFinished(id, 300_000);
    assert.equal(view.status, 'completed', JSON.stringify(view.failures.slice(0, 5)));
    assert.deepEqual(view.scope, { containers: [CONTAINER], tables: [TABLE] }, 'default scope: everything allowed');
    assert.deepEqual(view.counts, {
      scanned: OURS + PYTHON + ENTITIES,
      rewrapped: OURS + PYTHON + ENTITIES,
      alreadyCurrent: 0,
      legacyV1: PYTHON / PYTHON_V1_EVERY + ENTITIES_V1,
      reencrypted: 0,
      gone: 0,
      failed: 0,
    });
    assert.deepEqual(view.failures, []);

    // Blobs: key B only, same stored bytes, same plaintext, same properties, same metadata (with its case).
    const metadata = await listedMetadata(container);
    assert.equal(metadata.size, OURS + PYTHON);
    await eachLimit([...before_.entries()], 16, async ([name, was]) => {
      const read = await readBlob(container, name, h.keys.onlyB);
      assert.equal(read.keyId, KEY_B, name);
      assert.equal(sha256(read.stored), was.storedSha, `${name}: stored bytes unchanged`);
      assert.equal(sha256(read.plaintext), was.plainSha, `${name}: decrypts with key B alone`);
      assert.deepEqual(metadata.get(name), was.metadata, `${name}: other metadata intact, names in their case`);
      assert.deepEqual(
        propertiesOf(await container.getBlobClient(name).getProperties()),
        was.properties,
        `${name}: properties intact`,
      );
    });

    // The Python SDK, given key B alone, reads every blob (its own and ours) and sees its metadata as written.
    const python = await pythonRead(h.azurite.connectionString, CONTAINER, h.onlyBFile, KEY_B, [...before_.keys()]);
    assert.deepEqual(python.errors, {});
    for (const [name, was] of before_) {
      const seen = python.blobs[name];
      assert.ok(seen, name);
      assert.equal(seen.sha256, was.plainSha, `${name}: Python decrypts it with key B`);
      assert.deepEqual(seen.metadata, was.metadata, `${name}: Python sees the same metadata`);
    }
    const withOwner = pythonNames.filter((n) => Number(n.slice(-4)) % 2 === 0);
    for (const name of withOwner)
      assert.equal(python.blobs[name]?.metadata['PyOwner'], `python-${Number(name.slice(-4))}`);

    // Entities: key B only, everything but _ClientEncryptionMetadata1 byte-identical, values decrypt.
    const reader = new EncryptedTableClient(
      rawTable,
      { kek: h.keys.b, resolver: h.keys.onlyB.resolver },
      { allowV1: true },
    );
    let seen = 0;
    for await (const e of rawTable.listEntities()) {
      seen++;
      const key = `${e.partitionKey}/${e.rowKey}`;
      const { etag: _e, timestamp: _t, _ClientEncryptionMetadata1: m1, ...rest } = e as Record<string, unknown>;
      void _e;
      void _t;
      assert.deepEqual(rest, entitiesBefore.get(key), `${key}: ciphertext and other properties unchanged`);
      assert.equal(JSON.parse(String(m1)).WrappedContentKey.KeyId, KEY_B);
      const i = Number(String(e.rowKey).slice(1));
      const read = await reader.get(String(e.partitionKey), String(e.rowKey));
      assert.deepEqual(getProperty(read.properties, 'secret'), tv.string(`secret value ${i} ü`));
      assert.deepEqual(getProperty(read.properties, 'note'), tv.string(`note ${i}`));
      assert.equal(read.encryption?.protocol, i < ENTITIES_V1 ? '1.0' : '2.0');
    }
    assert.equal(seen, ENTITIES);
  });
});
