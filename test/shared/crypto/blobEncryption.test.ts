import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  ENCRYPTION_LIBRARY,
  encryptBlob,
  regionNonce,
  startBlobEncryption,
} from '../../../shared/crypto/blobEncryption';
import { collect } from '../../../shared/crypto/byteChunks';
import { parseEncryptionData } from '../../../shared/crypto/encryptionData';
import { unwrapContentKey } from '../../../shared/crypto/keyWrapPayload';
import { REGION_LENGTH, v2CipherLength } from '../../../shared/crypto/regionMath';
import { isCseError } from '../../../shared/errors';
import { loadManifest, patternPlaintext, vectorKeyRing, vectorPath } from '../../helpers/vectors';
import { v2Regions } from '../../helpers/v2Blobs';

const ring = vectorKeyRing();
const oct = ring.get('local:kek-1')!;

async function* chunked(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    yield data.subarray(off, off + n);
    off += n;
  }
}

function withoutWrappingMetadata(json: string, dropEncryptedKey: boolean): unknown {
  const doc = JSON.parse(json);
  delete doc.KeyWrappingMetadata;
  if (dropEncryptedKey) delete doc.WrappedContentKey.EncryptedKey;
  return doc;
}

test('with the vector CEK injected, the writer reproduces every v2 vector byte for byte', async () => {
  const vectors = loadManifest().blob.filter((v) => v.protocol === '2.0');
  assert.equal(vectors.length, 7);
  for (const v of vectors) {
    const kek = ring.get(v.kid)!;
    const cek = Buffer.from(v.cek_hex, 'hex');
    const session = await startBlobEncryption(kek, { cek });
    const plaintext = patternPlaintext(v.plaintext.length);
    const stored = await collect(session.encrypt(chunked(plaintext, [65536, 1, 1_000_003])));
    assert.ok(stored.equals(readFileSync(vectorPath(v.ciphertext_file))), `${v.id}: ciphertext`);

    const theirs = readFileSync(vectorPath(v.encryptiondata_file), 'utf8');
    const isRsa = v.kid === 'local:rsa-1';
    // Equal except KeyWrappingMetadata and, for RSA (OAEP is randomised), EncryptedKey.
    assert.deepEqual(
      withoutWrappingMetadata(session.metadataValue, isRsa),
      withoutWrappingMetadata(theirs, isRsa),
      `${v.id}: metadata`,
    );
    if (isRsa) {
      const ours = parseEncryptionData(session.metadataValue);
      assert.deepEqual(await unwrapContentKey(ring, ours.wrappedContentKey, '2.0'), cek);
    }
    assert.equal(session.keyId, v.kid);
    assert.equal(session.protocol, '2.0');
  }
});

test('metadata: compact .NET/Java order, FullBlob, our library name (which must not contain "Java")', async () => {
  const session = await startBlobEncryption(oct, { cek: Buffer.alloc(32, 0x11) });
  assert.equal(
    session.metadataValue,
    '{"EncryptionMode":"FullBlob","WrappedContentKey":{"KeyId":"local:kek-1","EncryptedKey":"Y10mpREhuBOxrieJdFp/2/jW+jgjH2KFpGgseeWHHHLlq+azTVPS3dybi0VgH9gi","Algorithm":"A256KW"},' +
      '"EncryptionAgent":{"Protocol":"2.0","EncryptionAlgorithm":"AES_GCM_256"},"EncryptedRegionInfo":{"DataLength":4194304,"NonceLength":12},' +
      `"KeyWrappingMetadata":{"EncryptionLibrary":"${ENCRYPTION_LIBRARY}"}}`,
  );
  assert.ok(!ENCRYPTION_LIBRARY.includes('Java'), 'table readers treat "Java" in EncryptionLibrary as legacy Java');
  const custom = await startBlobEncryption(oct, { encryptionLibrary: 'x/1' });
  assert.deepEqual(parseEncryptionData(custom.metadataValue).keyWrappingMetadata, { EncryptionLibrary: 'x/1' });
});

test('each session draws a fresh CEK', async () => {
  const a = await encryptBlob(oct, Buffer.from('same'));
  const b = await encryptBlob(oct, Buffer.from('same'));
  assert.notEqual(a.metadataValue, b.metadataValue);
  assert.ok(!a.ciphertext.equals(b.ciphertext));
});

test('empty plaintext gives an empty body; exactly 4 MiB gives one region, 4 MiB + 1 two', async () => {
  assert.equal((await encryptBlob(oct, Buffer.alloc(0))).ciphertext.length, 0);
  const one = await encryptBlob(oct, Buffer.alloc(REGION_LENGTH));
  assert.equal(one.ciphertext.length, REGION_LENGTH + 28);
  const two = await encryptBlob(oct, Buffer.alloc(REGION_LENGTH + 1));
  assert.equal(two.ciphertext.length, REGION_LENGTH + 1 + 56);
  assert.equal(
    two.ciphertext.subarray(REGION_LENGTH + 28, REGION_LENGTH + 40).toString('hex'),
    '000000000000000000000001',
  );
});

test('region nonces are the 96-bit big-endian counter', () => {
  assert.equal(regionNonce(0).toString('hex'), '000000000000000000000000');
  assert.equal(regionNonce(1).toString('hex'), '000000000000000000000001');
  assert.equal(regionNonce(0x1_0000_0001).toString('hex'), '000000000000000100000001');
});

test('output does not depend on how the input is chunked (matches an independent AES-GCM build)', async () => {
  const cek = Buffer.alloc(32, 0x5a);
  const plaintext = patternPlaintext(REGION_LENGTH + 1000);
  const expected = Buffer.concat(v2Regions(plaintext, cek, REGION_LENGTH));
  // Chunk edges exactly around the region boundary.
  for (const sizes of [
    [REGION_LENGTH - 1, 1, 1, 999],
    [REGION_LENGTH, 1000],
    [REGION_LENGTH + 1, 999],
  ]) {
    const session = await startBlobEncryption(oct, { cek });
    assert.ok((await collect(session.encrypt(chunked(plaintext, sizes)))).equals(expected), String(sizes));
  }
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 3_000_000 })), { maxLength: 6 }),
      async (sizes) => {
        const session = await startBlobEncryption(oct, { cek });
        // Any split, including 1-byte chunks across region boundaries; one large size keeps the chunk count sane.
        const pattern = [...sizes, 1_048_576];
        assert.ok((await collect(session.encrypt(chunked(plaintext, pattern)))).equals(expected));
      },
    ),
    { numRuns: 8 },
  );
});

test('streams: region 0 comes out before the input has ended', async () => {
  let inputFinished = false;
  async function* slowInput(): AsyncGenerator<Buffer> {
    yield Buffer.alloc(REGION_LENGTH + 1, 1);
    await new Promise((r) => setTimeout(r, 5));
    yield Buffer.alloc(10, 2);
    inputFinished = true;
  }
  const session = await startBlobEncryption(oct);
  let seen = 0;
  for await (const chunk of session.encrypt(slowInput())) {
    seen += chunk.length;
    if (seen >= REGION_LENGTH + 28) break;
  }
  assert.equal(inputFinished, false);
  assert.ok(seen >= REGION_LENGTH + 28);
});

test('a session encrypts once: a second encrypt would reuse nonces', async () => {
  const session = await startBlobEncryption(oct);
  await collect(session.encrypt(chunked(Buffer.from('a'), [1])));
  assert.throws(() => session.encrypt(chunked(Buffer.from('b'), [1])), /only once/);
});

test('an injected CEK must be 32 bytes; the ciphertext length is as computed', async () => {
  await assert.rejects(startBlobEncryption(oct, { cek: Buffer.alloc(31) }), (e) => isCseError(e, 'InvalidKey'));
  for (const n of [1, 15, 16, 17, 1000]) {
    assert.equal((await encryptBlob(oct, Buffer.alloc(n))).ciphertext.length, v2CipherLength(n));
  }
});

test('string chunks are refused (a stream with an encoding set is a bug)', async () => {
  const session = await startBlobEncryption(oct);
  async function* strings(): AsyncGenerator<Uint8Array> {
    yield 'text' as unknown as Uint8Array;
  }
  await assert.rejects(collect(session.encrypt(strings())), TypeError);
});
