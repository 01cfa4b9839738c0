/**
 * Compatibility of the blob HTTP API with what Microsoft's SDKs write and read, over real HTTP through the local
 * host with CSE_ALLOW_V1 and CSE_ALLOW_PLAINTEXT_READS on:
 * - every golden vector (Python SDK output, test/fixtures/vectors) uploaded raw to Azurite is served by GET,
 *   whole and by ranges;
 * - the Python SDK (Debian python3-azure, /usr/bin/python3) writes v2.0 and v1.0 blobs that GET serves, and
 *   decrypts what PUT stored, whole and by ranges;
 * - v1 padding failures look exactly like any other integrity failure;
 * - blobs without encryption data are served as they are (opt-in), Key Vault outages are 503 + Retry-After.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import { generateDevelopmentKeySet } from '../../shared/keys/localKeys';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { contentSha256, contentStream, sha256 } from '../helpers/blobContent';
import { projectRoot } from '../helpers/paths';
import { loadManifest, patternPlaintext, vectorJwkSetJson, vectorPath } from '../helpers/vectors';
import { startTestHost, type TestHost } from './support/host';
import { ApiClient, errorCode } from './support/httpClient';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const REGION = 4 * MiB;
const PYTHON = '/usr/bin/python3';
const INTEROP_KID = 'local:interop';

describe('blob HTTP API compatibility', () => {
  let azurite: RunningAzurite;
  let host: TestHost;
  let api: ApiClient;
  let storage: BlobServiceClient;
  const dir = mkdtempSync(join(tmpdir(), 'cse-compat-'));
  const keysFile = join(dir, 'keys.json');

  before(async () => {
    azurite = await startAzurite();
    storage = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const vectorKeys = JSON.parse(vectorJwkSetJson()) as { keys: object[] };
    const interopKeys = JSON.parse(generateDevelopmentKeySet(INTEROP_KID)) as { keys: object[] };
    writeFileSync(keysFile, JSON.stringify({ keys: [...interopKeys.keys, ...vectorKeys.keys] }));
    host = await startTestHost({
      AzureWebJobsStorage: azurite.connectionString,
      CSE_KEY_ID: INTEROP_KID,
      CSE_LOCAL_KEYS: keysFile,
      CSE_ALLOW_V1: 'true',
      CSE_ALLOW_PLAINTEXT_READS: 'true',
      // A vault on a loopback port nobody listens on: allowed, but unreachable.
      CSE_ALLOWED_KEY_VAULTS: '127.0.0.1:9',
    });
    api = new ApiClient(host.url);
  });
  after(async () => {
    await host?.stop();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('golden vectors uploaded raw', () => {
    const vectors = loadManifest().blob;
    before(async () => {
      const container = storage.getContainerClient('vectors');
      await container.createIfNotExists();
      for (const v of vectors) {
        const data = readFileSync(vectorPath(v.ciphertext_file));
        const metadata = JSON.parse(readFileSync(vectorPath(v.metadata_file), 'utf8')) as Record<string, string>;
        await container.getBlockBlobClient(v.id).upload(data, data.length, { metadata });
      }
    });
    for (const v of vectors) {
      it(`${v.id}: whole content, HEAD length, and ranges`, async () => {
        const length = v.plaintext.length;
        const whole = await api.digest('GET', ApiClient.blobPath('vectors', v.id));
        assert.equal(whole.status, 200);
        assert.deepEqual([whole.length, whole.sha256], [length, v.plaintext.sha256]);
        const head = await api.request('HEAD', ApiClient.blobPath('vectors', v.id));
        assert.equal(head.headers['content-length'], String(length));
        if (length === 0) return;
        const expected = patternPlaintext(length);
        const ranges: [number, number][] = [
          [0, 0],
          [length - 1, length - 1],
          [Math.floor(length / 2), length - 1],
        ];
        if (length > REGION) ranges.push([REGION - 3, REGION + 2], [REGION, length - 1]);
        if (length > 16) ranges.push([15, 16], [17, Math.min(40, length - 1)]); // v1 block boundaries
        for (const [start, end] of ranges) {
          const r = await api.request('GET', ApiClient.blobPath('vectors', v.id), {
            headers: { range: `bytes=${start}-${end}` },
          });
          assert.equal(r.status, 206, `${start}-${end}`);
          assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${length}`);
          assert.deepEqual(r.body, expected.subarray(start, end + 1), `${v.id} ${start}-${end}`);
        }
        const suffix = await api.request('GET', ApiClient.blobPath('vectors', v.id), {
          headers: { range: 'bytes=-7' },
        });
        assert.deepEqual(suffix.body, expected.subarray(Math.max(0, length - 7)));
      });
    }
  });

  describe('Python SDK interop', () => {
    const python = async (args: string[]): Promise<Record<string, unknown>> => {
      const { stdout } = await run(
        PYTHON,
        [
          join(projectRoot(), 'test', 'interop', 'blob_sdk.py'),
          ...args,
          '--conn',
          azurite.connectionString,
          '--jwks',
          keysFile,
          '--kid',
          INTEROP_KID,
        ],
        { maxBuffer: 1024 * 1024 },
      );
      return JSON.parse(stdout) as Record<string, unknown>;
    };
    const sizes = [0, 1, REGION + 5, 9 * MiB];

    for (const protocol of ['2.0', '1.0']) {
      it(`GET serves what the Python SDK wrote with protocol ${protocol}, whole and by ranges`, async () => {
        for (const length of sizes) {
          const name = `py-${protocol}-${length}`;
          await python([
            'write',
            '--container',
            'interop',
            '--name',
            name,
            '--protocol',
            protocol,
            '--seed',
            name,
            '--length',
            String(length),
          ]);
          const whole = await api.digest('GET', ApiClient.blobPath('interop', name));
          assert.equal(whole.status, 200, name);
          assert.deepEqual([whole.length, whole.sha256], [length, contentSha256(name, 0, length)], name);
          if (length < 2) continue;
          for (const [start, end] of [
            [1, 1],
            [length - 2, length - 1],
            [Math.max(0, REGION - 3), Math.min(length - 1, REGION + 3)],
          ] as [number, number][]) {
            const r = await api.digest('GET', ApiClient.blobPath('interop', name), {
              headers: { range: `bytes=${start}-${end}` },
            });
            assert.equal(r.status, 206);
            assert.equal(r.sha256, contentSha256(name, start, end - start + 1), `${name} ${start}-${end}`);
          }
        }
      });
    }

    it('the Python SDK decrypts what PUT stored, whole and by ranges', async () => {
      for (const length of sizes) {
        const name = `ts-${length}`;
        const put = await api.request('PUT', ApiClient.blobPath('interop', name), {
          body: contentStream(name, length),
        });
        assert.equal(put.status, 201);
        const whole = await python(['read', '--container', 'interop', '--name', name]);
        assert.deepEqual(whole, { length, sha256: contentSha256(name, 0, length) }, name);
        if (length < 10) continue;
        for (const [offset, count] of [
          [3, 5],
          [REGION - 2, 4],
          [length - 9, 9],
        ] as [number, number][]) {
          if (offset + count > length) continue;
          const part = await python([
            'read',
            '--container',
            'interop',
            '--name',
            name,
            '--offset',
            String(offset),
            '--count',
            String(count),
          ]);
          assert.deepEqual(
            part,
            { length: count, sha256: contentSha256(name, offset, count) },
            `${name} ${offset}+${count}`,
          );
        }
      }
    });
  });

  describe('v1 integrity failures are indistinguishable', () => {
    it('a bad v1 padding, a bad v2 tag and a wrong v1 key give the same 500 response', async () => {
      const container = storage.getContainerClient('interop');
      const tamper = async (
        source: string,
        target: string,
        mutate: (data: Buffer, md: Record<string, string>) => void,
      ): Promise<void> => {
        const blob = container.getBlockBlobClient(source);
        const props = await blob.getProperties();
        const data = await blob.downloadToBuffer();
        const metadata = { ...props.metadata };
        mutate(data, metadata);
        await container.getBlockBlobClient(target).upload(data, data.length, { metadata });
      };
      const flipLast = (data: Buffer): void => {
        data.writeUInt8(data.readUInt8(data.length - 1) ^ 0x55, data.length - 1); // last CBC block: padding garbage
      };
      await tamper(`py-1.0-${REGION + 5}`, 'bad-padding', flipLast);
      await tamper(`py-2.0-${REGION + 5}`, 'bad-tag', (d) => d.writeUInt8(d.readUInt8(20) ^ 1, 20));
      await tamper(`py-1.0-${REGION + 5}`, 'bad-key', (_d, md) => {
        const ed = JSON.parse(md.encryptiondata!) as { WrappedContentKey: { EncryptedKey: string } };
        const wrapped = Buffer.from(ed.WrappedContentKey.EncryptedKey, 'base64');
        wrapped.writeUInt8(wrapped.readUInt8(0) ^ 1, 0);
        ed.WrappedContentKey.EncryptedKey = wrapped.toString('base64');
        md.encryptiondata = JSON.stringify(ed);
      });
      const answers = new Set<string>();
      for (const name of ['bad-padding', 'bad-tag', 'bad-key']) {
        // bad-tag is tampered in region 0 only, so every range here touches a failing part of each blob.
        for (const range of [undefined, 'bytes=0-0', name === 'bad-tag' ? 'bytes=10-30' : `bytes=${REGION + 1}-`]) {
          const r = await api.request('GET', ApiClient.blobPath('interop', name), range ? { headers: { range } } : {});
          assert.equal(r.status, 500, `${name} ${range}`);
          assert.equal(errorCode(r), 'IntegrityCheckFailed');
          answers.add(`${r.status} ${r.headers['content-type']} ${r.body.toString('utf8')}`);
        }
        // HEAD of a v1 blob needs its length, so it decrypts the last block: same status. (HEAD of a v2 blob
        // serves no content and authenticates none: bad-tag answers 200 there.)
        if (name !== 'bad-tag')
          assert.equal((await api.request('HEAD', ApiClient.blobPath('interop', name))).status, 500);
      }
      assert.equal(answers.size, 1, [...answers].join('\n'));
    });
  });

  describe('plaintext reads and Key Vault outages', () => {
    it('serves a blob without encryption data as it is (CSE_ALLOW_PLAINTEXT_READS), with ranges', async () => {
      const text = Buffer.from('plain content, stored without encryption');
      await storage
        .getContainerClient('interop')
        .getBlockBlobClient('plain.txt')
        .upload(text, text.length, {
          blobHTTPHeaders: { blobContentType: 'text/plain' },
        });
      const whole = await api.request('GET', ApiClient.blobPath('interop', 'plain.txt'));
      assert.deepEqual([whole.status, whole.body], [200, text]);
      assert.equal(whole.headers['content-type'], 'text/plain');
      for (const [range, start, end] of [
        ['bytes=6-12', 6, 12],
        ['bytes=-7', text.length - 7, text.length - 1],
        [`bytes=${text.length - 1}-`, text.length - 1, text.length - 1],
      ] as [string, number, number][]) {
        const r = await api.request('GET', ApiClient.blobPath('interop', 'plain.txt'), { headers: { range } });
        assert.equal(r.status, 206);
        assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${text.length}`);
        assert.equal(sha256(r.body), sha256(text.subarray(start, end + 1)));
      }
      const beyond = await api.request('GET', ApiClient.blobPath('interop', 'plain.txt'), {
        headers: { range: `bytes=${text.length}-` },
      });
      assert.equal(beyond.status, 416);
    });

    it('503 KeyUnavailable with Retry-After when the key vault cannot be reached', async () => {
      const source = storage.getContainerClient('interop').getBlockBlobClient('ts-1');
      const props = await source.getProperties();
      const data = await source.downloadToBuffer();
      const ed = JSON.parse(props.metadata!.encryptiondata!) as { WrappedContentKey: { KeyId: string } };
      ed.WrappedContentKey.KeyId = 'http://127.0.0.1:9/keys/kek/0123456789abcdef0123456789abcdef';
      await storage
        .getContainerClient('interop')
        .getBlockBlobClient('vault-down')
        .upload(data, data.length, { metadata: { encryptiondata: JSON.stringify(ed) } });
      const r = await api.request('GET', ApiClient.blobPath('interop', 'vault-down'));
      assert.equal(r.status, 503, r.body.toString());
      assert.equal(errorCode(r), 'KeyUnavailable');
      assert.ok(Number(r.headers['retry-after']) >= 1);
    });
  });
});
