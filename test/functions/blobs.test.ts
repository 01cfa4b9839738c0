/**
 * The blob HTTP API over real HTTP: the local host (child process, streaming on) in front of a private Azurite.
 * Every route, Range form, conditional header, content/metadata header and error code of the issue.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { generateDevelopmentKeySet } from '../../shared/keys/localKeys';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { contentBytes, contentSha256, contentStream, sha256 } from '../helpers/blobContent';
import { startTestHost, type TestHost } from './support/host';
import { ApiClient, errorCode, IncompleteResponseError } from './support/httpClient';

const MiB = 1024 * 1024;
const REGION = 4 * MiB;
const STORED_REGION = REGION + 28;
const FUNCTION_KEY = 'test-function-key';
const C = 'files';

describe('blob HTTP API', () => {
  let azurite: RunningAzurite;
  let host: TestHost;
  let api: ApiClient;
  let storage: BlobServiceClient;
  const keysDir = mkdtempSync(join(tmpdir(), 'cse-http-'));

  before(async () => {
    azurite = await startAzurite();
    storage = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const keysFile = join(keysDir, 'keys.json');
    writeFileSync(keysFile, generateDevelopmentKeySet('local:http-test'));
    host = await startTestHost({
      AzureWebJobsStorage: azurite.connectionString,
      CSE_KEY_ID: 'local:http-test',
      CSE_LOCAL_KEYS: keysFile,
      CSE_CONTAINERS: '*',
      LOCALHOST_FUNCTION_KEYS: FUNCTION_KEY,
    });
    api = new ApiClient(host.url, { 'x-functions-key': FUNCTION_KEY });
  });
  after(async () => {
    await host?.stop();
    await azurite?.stop();
    rmSync(keysDir, { recursive: true, force: true });
  });

  const path = (name: string, container = C): string => ApiClient.blobPath(container, name);
  const put = (name: string, seed: string, length: number, headers: Record<string, string> = {}) =>
    api.json<{ etag: string; contentLength: number; keyId: string; protocol: string }>('PUT', path(name), {
      body: contentStream(seed, length, 256 * 1024),
      headers,
    });

  describe('PUT and GET round trips', () => {
    for (const length of [0, 1, 15, 16, 17, REGION - 1, REGION, REGION + 1, 9 * MiB]) {
      it(`${length} bytes`, async () => {
        const name = `roundtrip/${length}.bin`;
        const created = await put(name, `rt${length}`, length);
        assert.equal(created.status, 201);
        assert.deepEqual(
          { ...created.json, etag: undefined },
          { container: C, name, etag: undefined, contentLength: length, keyId: 'local:http-test', protocol: '2.0' },
        );
        assert.equal(created.headers.etag, created.json.etag);
        const got = await api.digest('GET', path(name));
        assert.equal(got.status, 200);
        assert.equal(got.headers['content-length'], String(length));
        assert.deepEqual(
          { length: got.length, sha256: got.sha256 },
          { length, sha256: contentSha256(`rt${length}`, 0, length) },
        );
        // What is stored is ciphertext in the v2 layout, not the plaintext.
        const raw = storage.getContainerClient(C).getBlobClient(name);
        const props = await raw.getProperties();
        assert.equal(props.contentLength, length + 28 * Math.ceil(length / REGION));
        if (length > 0) {
          const first = await raw.downloadToBuffer(12, Math.min(length, 64));
          assert.notDeepEqual(first, contentBytes(`rt${length}`, 0, Math.min(length, 64)));
        }
      });
    }

    it('streams a chunked upload (no Content-Length) and refuses nothing for it', async () => {
      const r = await api.json('PUT', path('chunked'), { body: contentStream('ch', 5 * MiB + 3, 100_000) });
      assert.equal(r.status, 201);
      const got = await api.digest('GET', path('chunked'));
      assert.equal(got.sha256, contentSha256('ch', 0, 5 * MiB + 3));
    });

    it('replaces an existing blob', async () => {
      await put('replace', 'one', 100);
      await put('replace', 'two', 50);
      const got = await api.digest('GET', path('replace'));
      assert.deepEqual([got.length, got.sha256], [50, contentSha256('two', 0, 50)]);
    });
  });

  describe('Range', () => {
    const name = 'ranges/nine';
    const total = 9 * MiB;
    before(async () => {
      assert.equal((await put(name, 'nine', total)).status, 201);
      await put('ranges/empty', 'e', 0);
    });
    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=10-20', 10, 20],
      [`bytes=${REGION - 2}-${REGION + 1}`, REGION - 2, REGION + 1], // crosses a region boundary
      [`bytes=${REGION - 1}-${2 * REGION}`, REGION - 1, 2 * REGION], // spans three regions
      [`bytes=${total - 1}-${total - 1}`, total - 1, total - 1], // the last byte
      [`bytes=${total - 10}-`, total - 10, total - 1], // open-ended
      [`bytes=${8 * MiB}-${total + 1000}`, 8 * MiB, total - 1], // end past the last byte: clamped
      ['bytes=-1', total - 1, total - 1], // suffix
      [`bytes=-${REGION + 7}`, total - REGION - 7, total - 1],
      [`bytes=-${total + 5}`, 0, total - 1], // suffix longer than the blob: all of it
      ['BYTES = 5-9', 5, 9], // unit is case-insensitive
    ];
    for (const [header, start, end] of cases) {
      it(`${header} -> 206 bytes ${start}-${end}/${total}`, async () => {
        const got = await api.digest('GET', path(name), { headers: { range: header } });
        assert.equal(got.status, 206);
        assert.equal(got.headers['content-range'], `bytes ${start}-${end}/${total}`);
        assert.equal(got.headers['content-length'], String(end - start + 1));
        assert.equal(got.length, end - start + 1);
        assert.equal(got.sha256, contentSha256('nine', start, end - start + 1));
      });
    }
    for (const header of [`bytes=${total}-`, `bytes=${total}-${total + 5}`, 'bytes=-0']) {
      it(`${header} -> 416 with Content-Range bytes */${total}`, async () => {
        const r = await api.request('GET', path(name), { headers: { range: header } });
        assert.equal(r.status, 416);
        assert.equal(r.headers['content-range'], `bytes */${total}`);
        assert.equal(errorCode(r), 'RangeNotSatisfiable');
      });
    }
    it('any range of an empty blob -> 416 bytes */0', async () => {
      for (const header of ['bytes=0-', 'bytes=0-0', 'bytes=-1']) {
        const r = await api.request('GET', path('ranges/empty'), { headers: { range: header } });
        assert.equal(r.status, 416, header);
        assert.equal(r.headers['content-range'], 'bytes */0');
      }
      const whole = await api.request('GET', path('ranges/empty'));
      assert.deepEqual([whole.status, whole.body.length, whole.headers['content-length']], [200, 0, '0']);
    });
    for (const header of ['bytes=5-2', 'bytes=abc', 'items=0-5', 'bytes=0-1,5-6', 'bytes=', '0-5', 'bytes=--5']) {
      it(`ignores "${header}" (200, whole body)`, async () => {
        const got = await api.digest('GET', path(name), { headers: { range: header } });
        assert.equal(got.status, 200);
        assert.equal(got.headers['content-range'], undefined);
        assert.equal(got.length, total);
        assert.equal(got.sha256, contentSha256('nine', 0, total));
      });
    }
    it('HEAD gives the GET headers without a body, and ignores Range', async () => {
      const get = await api.request('GET', path(name), { headers: { range: 'bytes=0-0' } });
      const head = await api.request('HEAD', path(name), { headers: { range: 'bytes=0-0' } });
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(head.headers['content-length'], String(total));
      assert.equal(head.headers['accept-ranges'], 'bytes');
      for (const h of ['etag', 'last-modified', 'content-type', 'accept-ranges'])
        assert.equal(head.headers[h], get.headers[h], h);
    });
  });

  describe('conditional requests', () => {
    let etag: string;
    let lastModified: string;
    before(async () => {
      etag = (await put('cond/blob', 'c', 1000)).json.etag;
      lastModified = (await api.request('HEAD', path('cond/blob'))).headers['last-modified'] as string;
    });
    it('If-None-Match with the current ETag -> 304 (GET and HEAD); another -> 200', async () => {
      for (const method of ['GET', 'HEAD']) {
        const r = await api.request(method, path('cond/blob'), { headers: { 'if-none-match': etag } });
        assert.equal(r.status, 304, method);
        assert.equal(r.body.length, 0);
        assert.equal(r.headers.etag, etag);
      }
      const star = await api.request('GET', path('cond/blob'), { headers: { 'if-none-match': '*' } });
      assert.equal(star.status, 304);
      const other = await api.request('GET', path('cond/blob'), { headers: { 'if-none-match': '"0x0", "0x1"' } });
      assert.equal(other.status, 200);
    });
    it('If-Match mismatch -> 412 ConditionNotMet; match -> 200', async () => {
      const bad = await api.request('GET', path('cond/blob'), { headers: { 'if-match': '"0x8D0000000000000"' } });
      assert.equal(bad.status, 412);
      assert.equal(errorCode(bad), 'ConditionNotMet');
      const good = await api.request('GET', path('cond/blob'), { headers: { 'if-match': etag } });
      assert.equal(good.status, 200);
      assert.equal(good.body.length, 1000);
    });
    it('If-Modified-Since / If-Unmodified-Since', async () => {
      assert.equal(
        (await api.request('GET', path('cond/blob'), { headers: { 'if-modified-since': lastModified } })).status,
        304,
      );
      const old = 'Mon, 01 Jan 2001 00:00:00 GMT';
      assert.equal(
        (await api.request('GET', path('cond/blob'), { headers: { 'if-unmodified-since': old } })).status,
        412,
      );
    });
    it('If-Range: the range applies only while the ETag or date still matches', async () => {
      const withTag = await api.request('GET', path('cond/blob'), {
        headers: { range: 'bytes=0-9', 'if-range': etag },
      });
      assert.equal(withTag.status, 206);
      assert.equal(withTag.body.length, 10);
      const stale = await api.request('GET', path('cond/blob'), {
        headers: { range: 'bytes=0-9', 'if-range': '"0x0"' },
      });
      assert.equal(stale.status, 200);
      assert.equal(stale.body.length, 1000);
      const byDate = await api.request('GET', path('cond/blob'), {
        headers: { range: 'bytes=0-9', 'if-range': lastModified },
      });
      assert.equal(byDate.status, 206);
    });
    it('PUT If-None-Match: * creates once, then 409 BlobExists; PUT If-Match stale -> 412', async () => {
      const first = await put('cond/once', 'o', 10, { 'if-none-match': '*' });
      assert.equal(first.status, 201);
      const second = await api.request('PUT', path('cond/once'), { body: 'x', headers: { 'if-none-match': '*' } });
      assert.equal(second.status, 409);
      assert.equal(errorCode(second), 'BlobExists');
      const stale = await api.request('PUT', path('cond/once'), { body: 'x', headers: { 'if-match': '"0x0"' } });
      assert.equal(stale.status, 412);
      assert.equal(errorCode(stale), 'ConditionNotMet');
      const ok = await put('cond/once', 'o2', 10, { 'if-match': first.json.etag });
      assert.equal(ok.status, 201);
      const got = await api.request('GET', path('cond/once'));
      assert.deepEqual(got.body, contentBytes('o2', 0, 10));
    });
    it('DELETE: If-Match stale -> 412, then 204, then 404 BlobNotFound', async () => {
      const { json } = await put('cond/del', 'd', 5);
      const stale = await api.request('DELETE', path('cond/del'), { headers: { 'if-match': '"0x0"' } });
      assert.equal(stale.status, 412);
      assert.equal(errorCode(stale), 'ConditionNotMet');
      assert.equal((await api.request('DELETE', path('cond/del'), { headers: { 'if-match': json.etag } })).status, 204);
      const again = await api.request('DELETE', path('cond/del'));
      assert.equal(again.status, 404);
      assert.equal(errorCode(again), 'BlobNotFound');
      const gone = await api.request('GET', path('cond/del'));
      assert.equal(gone.status, 404);
      assert.equal(errorCode(gone), 'BlobNotFound');
    });
  });

  describe('content headers and metadata', () => {
    const contentHeaders = {
      'content-type': 'text/csv; charset=utf-8',
      'cache-control': 'max-age=60',
      'content-disposition': 'attachment; filename="report.csv"',
      'content-encoding': 'identity',
      'content-language': 'fr-CA',
    };
    it('stores content headers and x-ms-meta-* and serves them on GET and HEAD', async () => {
      const r = await put('headers/report.csv', 'h', 300, {
        ...contentHeaders,
        'x-ms-meta-Author': 'Ann',
        'x-ms-meta-dept': 'ops',
      });
      assert.equal(r.status, 201);
      for (const method of ['GET', 'HEAD']) {
        const got = await api.request(method, path('headers/report.csv'));
        for (const [k, v] of Object.entries(contentHeaders)) assert.equal(got.headers[k], v, `${method} ${k}`);
        assert.equal(got.headers['x-ms-meta-author'], 'Ann');
        assert.equal(got.headers['x-ms-meta-dept'], 'ops');
        assert.equal(got.headers['x-ms-meta-encryptiondata'], undefined);
      }
    });
    it('PUT refuses reserved, invalid and oversized metadata before storing anything', async () => {
      const cases: [Record<string, string>, string][] = [
        [{ 'x-ms-meta-encryptiondata': '{}' }, 'ReservedMetadata'],
        [{ 'x-ms-meta-EncryptionData': '{}' }, 'ReservedMetadata'],
        [{ 'x-ms-meta-bad-name': 'x' }, 'InvalidMetadata'],
        [{ 'x-ms-meta-9lives': 'x' }, 'InvalidMetadata'],
        [{ 'x-ms-meta-big': 'x'.repeat(7800) }, 'MetadataTooLarge'], // fits alone; not with encryptiondata
      ];
      for (const [headers, code] of cases) {
        const r = await api.request('PUT', path('headers/refused'), { body: 'data', headers });
        assert.equal(r.status, 400, JSON.stringify(headers).slice(0, 80));
        assert.equal(errorCode(r), code);
      }
      assert.equal(await storage.getContainerClient(C).getBlobClient('headers/refused').exists(), false);
    });
    it('PUT /api/metadata replaces user metadata, keeps encryptiondata, honours If-Match', async () => {
      const created = await put('meta/doc', 'm', REGION + 10, { 'x-ms-meta-old': '1' });
      const raw = storage.getContainerClient(C).getBlobClient('meta/doc');
      const encryptiondata = (await raw.getProperties()).metadata?.encryptiondata;
      const mpath = `/api/metadata/${C}/meta/doc`;
      const r = await api.json<{ etag: string }>('PUT', mpath, {
        body: JSON.stringify({ Owner: 'bob', stage: 'final' }),
      });
      assert.equal(r.status, 200);
      assert.notEqual(r.json.etag, created.json.etag);
      const props = await raw.getProperties();
      assert.equal(props.metadata?.encryptiondata, encryptiondata);
      assert.equal(props.metadata?.old, undefined);
      const got = await api.digest('GET', path('meta/doc'));
      assert.equal(got.headers['x-ms-meta-owner'], 'bob');
      assert.equal(got.headers['x-ms-meta-stage'], 'final');
      assert.equal(got.headers.etag, r.json.etag);
      assert.equal(got.sha256, contentSha256('m', 0, REGION + 10));

      const stale = await api.request('PUT', mpath, { body: '{}', headers: { 'if-match': created.json.etag } });
      assert.equal(stale.status, 412);
      assert.equal(errorCode(stale), 'ConditionNotMet');
      const current = await api.request('PUT', mpath, { body: '{"a":"b"}', headers: { 'if-match': r.json.etag } });
      assert.equal(current.status, 200);
    });
    it('PUT /api/metadata error codes', async () => {
      await put('meta/target', 't', 10);
      const mpath = `/api/metadata/${C}/meta/target`;
      const cases: [string, number, string][] = [
        ['not json', 400, 'InvalidMetadata'],
        ['["a"]', 400, 'InvalidMetadata'],
        ['{"n": 5}', 400, 'InvalidMetadata'],
        ['{"bad-name": "x"}', 400, 'InvalidMetadata'],
        ['{"encryptiondata": "x"}', 400, 'ReservedMetadata'],
        [JSON.stringify({ big: 'x'.repeat(8000) }), 400, 'MetadataTooLarge'],
      ];
      for (const [body, status, code] of cases) {
        const r = await api.request('PUT', mpath, { body });
        assert.equal(r.status, status, body.slice(0, 40));
        assert.equal(errorCode(r), code, body.slice(0, 40));
      }
      const missing = await api.request('PUT', `/api/metadata/${C}/meta/missing`, { body: '{}' });
      assert.equal(missing.status, 404);
      assert.equal(errorCode(missing), 'BlobNotFound');
    });
  });

  describe('names and listing', () => {
    const names = ['dir/sub/file.txt', 'with space.txt', 'ünïcødé/名前 🚀.bin', 'odd?#%&+=;chars', 'a//double'];
    it('round-trips names with slashes, spaces, unicode and reserved characters', async () => {
      for (const [i, name] of names.entries()) {
        const r = await put(`names/${name}`, `n${i}`, 100 + i);
        assert.equal(r.status, 201, name);
        assert.equal((r.json as unknown as { name: string }).name, `names/${name}`);
        const got = await api.request('GET', path(`names/${name}`));
        assert.deepEqual(got.body, contentBytes(`n${i}`, 0, 100 + i), name);
      }
      const listed = await api.json<{ blobs: { name: string }[] }>('GET', `/api/blobs/${C}?prefix=names/`);
      assert.deepEqual(listed.json.blobs.map((b) => b.name).sort(), names.map((n) => `names/${n}`).sort());
    });
    it('lists one page at a time with plaintext lengths, keyId and protocol', async () => {
      const container = 'listing';
      const lengths = [0, 1, 17, REGION + 1, 3];
      for (const [i, length] of lengths.entries()) {
        await api.request('PUT', ApiClient.blobPath(container, `item-${i}`), { body: contentStream(`l${i}`, length) });
      }
      await storage.getContainerClient(container).getBlockBlobClient('plain').upload('abc', 3);
      const seen: {
        name: string;
        contentLength: number | null;
        keyId: string | null;
        protocol: string | null;
        etag: string;
        lastModified: string;
      }[] = [];
      let token: string | null = null;
      let pages = 0;
      do {
        const query: string = `?maxResults=2${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`;
        const page: { status: number; json: { blobs: typeof seen; continuationToken: string | null } } =
          await api.json<{
            blobs: typeof seen;
            continuationToken: string | null;
          }>('GET', `/api/blobs/${container}${query}`);
        assert.equal(page.status, 200);
        assert.ok(page.json.blobs.length <= 2);
        seen.push(...page.json.blobs);
        token = page.json.continuationToken;
        pages++;
      } while (token !== null);
      assert.equal(pages, 3);
      assert.deepEqual(
        seen.map((b) => [b.name, b.contentLength, b.keyId, b.protocol]),
        [...lengths.map((l, i) => [`item-${i}`, l, 'local:http-test', '2.0']), ['plain', 3, null, null]],
      );
      const head = await api.request('HEAD', ApiClient.blobPath(container, 'item-3'));
      assert.equal(seen[3]?.etag, head.headers.etag);
      assert.ok(!Number.isNaN(Date.parse(seen[3]?.lastModified ?? '')));
      const prefixed = await api.json<{ blobs: unknown[] }>('GET', `/api/blobs/${container}?prefix=item-1`);
      assert.equal(prefixed.json.blobs.length, 1);
      const empty = await api.json('GET', '/api/blobs/never-created');
      assert.deepEqual(empty.json, { blobs: [], continuationToken: null });
      const bad = await api.request('GET', `/api/blobs/${container}?maxResults=0`);
      assert.equal(bad.status, 400);
      assert.equal(errorCode(bad), 'InvalidRequest');
    });
  });

  describe('error codes', () => {
    it('400 InvalidName for container and blob names, before any storage call', async () => {
      for (const p of [
        '/api/blobs/Bad_Container/x',
        '/api/blobs/ab/x',
        `/api/blobs/${C}/dir%2F..%2Fescape`, // "dir/../escape" once decoded: a traversal attempt
        `/api/blobs/${C}/trailing.`,
        `/api/blobs/${C}/ctl%01char`,
      ]) {
        for (const method of ['GET', 'PUT', 'DELETE']) {
          const r = await api.request(method, p, method === 'PUT' ? { body: 'x' } : {});
          assert.equal(r.status, 400, `${method} ${p}`);
          assert.equal(errorCode(r), 'InvalidName', `${method} ${p}`);
        }
      }
      const list = await api.request('GET', '/api/blobs/Bad_Container');
      assert.equal(errorCode(list), 'InvalidName');
    });
    it("403 ContainerNotAllowed for the host's own containers", async () => {
      for (const container of ['azure-webjobs-hosts', 'azure-webjobs-secrets']) {
        const r = await api.request('GET', ApiClient.blobPath(container, 'x'));
        assert.equal(r.status, 403);
        assert.equal(errorCode(r), 'ContainerNotAllowed');
        const w = await api.request('PUT', ApiClient.blobPath(container, 'x'), { body: 'x' });
        assert.equal(errorCode(w), 'ContainerNotAllowed');
        const l = await api.request('GET', `/api/blobs/${container}`);
        assert.equal(errorCode(l), 'ContainerNotAllowed');
      }
    });
    it('409 NotEncrypted for a blob without encryption data (plaintext reads off)', async () => {
      await storage.getContainerClient(C).getBlockBlobClient('raw/plain').upload('secret?', 7);
      for (const method of ['GET', 'HEAD']) {
        const r = await api.request(method, path('raw/plain'));
        assert.equal(r.status, 409);
        if (method === 'GET') assert.equal(errorCode(r), 'NotEncrypted');
      }
    });
    it('409 KeyNotAllowed for a key id outside the configuration (never contacted)', async () => {
      await put('raw/foreign-key', 'fk', 10);
      const raw = storage.getContainerClient(C).getBlockBlobClient('raw/foreign-key');
      const props = await raw.getProperties();
      const data = await raw.downloadToBuffer();
      const encryptiondata = props.metadata!.encryptiondata!.replace('"local:http-test"', '"local:someone-else"');
      await raw.upload(data, data.length, { metadata: { encryptiondata } });
      const r = await api.request('GET', path('raw/foreign-key'));
      assert.equal(r.status, 409);
      assert.equal(errorCode(r), 'KeyNotAllowed');
    });
    it('409 LegacyFormatDisabled for v1.0 content without CSE_ALLOW_V1', async () => {
      const encryptiondata = JSON.stringify({
        WrappedContentKey: {
          KeyId: 'local:http-test',
          EncryptedKey: Buffer.alloc(40).toString('base64'),
          Algorithm: 'A256KW',
        },
        EncryptionAgent: { Protocol: '1.0', EncryptionAlgorithm: 'AES_CBC_256' },
        ContentEncryptionIV: Buffer.alloc(16).toString('base64'),
        KeyWrappingMetadata: { EncryptionLibrary: 'test' },
        EncryptionMode: 'FullBlob',
      });
      await storage
        .getContainerClient(C)
        .getBlockBlobClient('raw/v1')
        .upload(Buffer.alloc(32), 32, { metadata: { encryptiondata } });
      const r = await api.request('GET', path('raw/v1'));
      assert.equal(r.status, 409);
      assert.equal(errorCode(r), 'LegacyFormatDisabled');
    });
    it('500 IntegrityCheckFailed before headers when the first region fails; nothing served', async () => {
      await put('raw/tampered-small', 'ts', 1000);
      const raw = storage.getContainerClient(C).getBlockBlobClient('raw/tampered-small');
      const props = await raw.getProperties();
      const data = await raw.downloadToBuffer();
      data.writeUInt8(data.readUInt8(500) ^ 0x80, 500);
      await raw.upload(data, data.length, { metadata: props.metadata });
      for (const range of [undefined, 'bytes=0-0', 'bytes=900-']) {
        const r = await api.request('GET', path('raw/tampered-small'), range ? { headers: { range } } : {});
        assert.equal(r.status, 500, String(range));
        assert.equal(errorCode(r), 'IntegrityCheckFailed');
        assert.ok(!r.body.includes(contentBytes('ts', 0, 16)));
      }
    });
    it('aborts the stream after the headers when a later region fails; no byte of it is sent', async () => {
      await put('raw/tampered-big', 'tb', 9 * MiB);
      const raw = storage.getContainerClient(C).getBlockBlobClient('raw/tampered-big');
      const props = await raw.getProperties();
      const data = await raw.downloadToBuffer();
      const at = STORED_REGION + 12 + 1000; // plaintext byte REGION + 1000, in region 1
      data.writeUInt8(data.readUInt8(at) ^ 1, at);
      await raw.upload(data, data.length, { metadata: props.metadata });
      let status = 0;
      let received = 0;
      const chunks: Buffer[] = [];
      await assert.rejects(
        api.request('GET', path('raw/tampered-big'), {
          onChunk: (c) => {
            received += c.length;
            chunks.push(c);
          },
        }),
        (e) => {
          assert.ok(e instanceof IncompleteResponseError, String(e));
          status = e.status;
          return true;
        },
      );
      assert.equal(status, 200);
      assert.ok(received <= REGION, `received ${received} bytes`);
      assert.equal(sha256(Buffer.concat(chunks)), contentSha256('tb', 0, received));
      // A range that avoids the tampered region is still served.
      const ok = await api.digest('GET', path('raw/tampered-big'), { headers: { range: `bytes=0-${REGION - 1}` } });
      assert.equal(ok.status, 206);
      assert.equal(ok.sha256, contentSha256('tb', 0, REGION));
    });
    it('401 without a function key on blob routes; health is anonymous and names nothing', async () => {
      const anonymous = new ApiClient(host.url);
      assert.equal((await anonymous.request('GET', path('raw/plain'))).status, 401);
      assert.equal((await anonymous.request('GET', `/api/blobs/${C}`)).status, 401);
      assert.equal((await anonymous.request('PUT', `/api/metadata/${C}/x`, { body: '{}' })).status, 401);
      const health = await anonymous.json<Record<string, string>>('GET', '/api/health');
      assert.equal(health.status, 200);
      assert.deepEqual(health.json, { status: 'healthy', storage: 'ok', key: 'ok' });
      assert.ok(!JSON.stringify(health.json).includes('http-test'));
    });
  });

  describe('faults', () => {
    it('a client that disconnects mid-upload leaves no committed blob, and an existing blob untouched', async () => {
      const before = await put('faults/existing', 'keep', 1000);
      for (const name of ['faults/new', 'faults/existing']) {
        await new Promise<void>((resolve) => abortedUpload(host.url, path(name), 6 * MiB, resolve));
        // Give the host time to notice and clean up.
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(await storage.getContainerClient(C).getBlobClient('faults/new').exists(), false);
      const got = await api.request('GET', path('faults/existing'));
      assert.equal(got.headers.etag, before.json.etag);
      assert.deepEqual(got.body, contentBytes('keep', 0, 1000));
      // Nothing was committed anywhere under that prefix.
      const listed = await api.json<{ blobs: { name: string }[] }>('GET', `/api/blobs/${C}?prefix=faults/`);
      assert.deepEqual(
        listed.json.blobs.map((b) => b.name),
        ['faults/existing'],
      );
    });

    it('health answers 503 when storage is down', async () => {
      await azurite.stop();
      const anonymous = new ApiClient(host.url);
      const health = await anonymous.json<Record<string, string>>('GET', '/api/health');
      assert.equal(health.status, 503);
      assert.equal(health.json.storage, 'unavailable');
      assert.ok(health.headers['retry-after']);
    });
  });
});

/** Sends `sendBytes` of a chunked PUT body, then destroys the connection (a client going away). */
function abortedUpload(baseUrl: string, path: string, sendBytes: number, done: () => void): void {
  const req = http.request(new URL(path, baseUrl), {
    method: 'PUT',
    headers: { 'x-functions-key': FUNCTION_KEY, 'transfer-encoding': 'chunked' },
  });
  req.on('error', () => undefined);
  req.on('response', (res) => res.resume());
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 7);
  const pump = (): void => {
    while (sent < sendBytes) {
      sent += chunk.length;
      if (!req.write(chunk)) {
        req.once('drain', pump);
        return;
      }
    }
    setTimeout(() => {
      req.destroy();
      done();
    }, 200);
  };
  pump();
}
