import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  DEFAULT_MAX_REGION_LENGTH,
  decryptBlob,
  openBlobDecryption,
  type BlobDecryptor,
} from '../../../shared/crypto/blobDecryption';
import { chunksOf, collect } from '../../../shared/crypto/byteChunks';
import type { RangeRequest } from '../../../shared/crypto/httpRange';
import type { KeyResolver } from '../../../shared/keys/kek';
import { isCseError } from '../../../shared/errors';
import { loadManifest, patternPlaintext, vectorKeyRing, vectorPath, type BlobVector } from '../../helpers/vectors';
import { makeV2Blob, sdkNonce, v2Regions, type NonceScheme } from '../../helpers/v2Blobs';
import { parseJwkSet } from '../../../shared/keys/localKeys';

const ring = vectorKeyRing();
const oct = ring.get('local:kek-1')!;
const MiB = 1024 * 1024;

function vectorFiles(v: BlobVector): { metadata: string; stored: Buffer } {
  return {
    metadata: readFileSync(vectorPath(v.encryptiondata_file), 'utf8'),
    stored: readFileSync(vectorPath(v.ciphertext_file)),
  };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const bounded = (start: number, end: number): RangeRequest => ({ kind: 'bounded', start, end });

/** Decrypts through the streaming API as a caller with a file would: plaintextLength, plan, read, decrypt. */
async function readRange(d: BlobDecryptor, stored: Buffer, span: { start: number; end: number }): Promise<Buffer> {
  const plan = d.planRange(span, stored.length);
  const slice = stored.subarray(plan.cipherOffset, plan.cipherOffset + plan.cipherCount);
  assert.equal(slice.length, plan.cipherCount, 'the plan stays inside the stored content');
  return collect(d.decryptRange(chunksOf(slice, 65_537), plan));
}

test('every blob vector decrypts to the documented plaintext (v1 with the opt-in)', async () => {
  const vectors = loadManifest().blob;
  assert.equal(vectors.length, 13);
  for (const v of vectors) {
    const { metadata, stored } = vectorFiles(v);
    const plain = await decryptBlob(metadata, stored, ring, { allowV1: true });
    assert.equal(plain.length, v.plaintext.length, v.id);
    assert.equal(sha256(plain), v.plaintext.sha256, v.id);
    if (typeof v.plaintext.hex === 'string') assert.equal(plain.toString('hex'), v.plaintext.hex, v.id);
    assert.ok(plain.equals(patternPlaintext(v.plaintext.length)), `${v.id}: the documented pattern`);
    const d = await openBlobDecryption(metadata, ring, { allowV1: true });
    assert.equal(d.protocol, v.protocol);
    assert.equal(d.keyId, v.kid);
    const total = await d.plaintextLength(stored.length, async (o, n) => stored.subarray(o, o + n));
    assert.equal(total, v.plaintext.length, `${v.id}: plaintextLength`);
  }
});

test('vector ranges across the 4 MiB region boundary (v2) and CBC blocks (v1) match the plaintext', async () => {
  const expected = patternPlaintext(4 * MiB + 5);
  for (const id of ['blob-v2-oct-4194309', 'blob-v1-oct-4194309']) {
    const v = loadManifest().blob.find((x) => x.id === id)!;
    const { metadata, stored } = vectorFiles(v);
    const d = await openBlobDecryption(metadata, ring, { allowV1: true });
    const spans: [number, number][] = [
      [0, 0],
      [4 * MiB - 1, 4 * MiB],
      [4 * MiB - 3, 4 * MiB + 4],
      [4 * MiB, 4 * MiB + 4],
      [4 * MiB + 4, 4 * MiB + 4],
      [15, 16],
      [16, 31],
      [17, 4 * MiB - 17],
      [0, 4 * MiB + 4],
    ];
    for (const [start, end] of spans) {
      const got = await readRange(d, stored, { start, end });
      assert.ok(got.equals(expected.subarray(start, end + 1)), `${id} ${start}-${end}`);
    }
    // A v2 range inside region 1 reads only region 1.
    if (v.protocol === '2.0') {
      const plan = d.planRange({ start: 4 * MiB + 1, end: 4 * MiB + 2 }, stored.length);
      assert.deepEqual([plan.cipherOffset, plan.cipherCount], [4 * MiB + 28, 5 + 28]);
    }
  }
});

test('decryptBlob ranges: suffix, open-ended, unsatisfiable', async () => {
  const v = loadManifest().blob.find((x) => x.id === 'blob-v2-oct-31')!;
  const { metadata, stored } = vectorFiles(v);
  const plain = patternPlaintext(31);
  assert.deepEqual(
    await decryptBlob(metadata, stored, ring, { allowV1: false, range: { kind: 'suffix', length: 5 } }),
    plain.subarray(26),
  );
  assert.deepEqual(
    await decryptBlob(metadata, stored, ring, { allowV1: false, range: { kind: 'from', start: 30 } }),
    plain.subarray(30),
  );
  await assert.rejects(
    decryptBlob(metadata, stored, ring, { allowV1: false, range: { kind: 'from', start: 31 } }),
    (e) => isCseError(e, 'RangeNotSatisfiable'),
  );
});

test('v1 is refused without the opt-in, before any key is contacted', async () => {
  const v = loadManifest().blob.find((x) => x.id === 'blob-v1-oct-31')!;
  const { metadata, stored } = vectorFiles(v);
  const untouchable: KeyResolver = {
    resolve: async () => {
      throw new Error('the key must not be contacted');
    },
  };
  await assert.rejects(openBlobDecryption(metadata, untouchable, { allowV1: false }), (e) =>
    isCseError(e, 'LegacyFormatDisabled'),
  );
  await assert.rejects(decryptBlob(metadata, stored, ring, { allowV1: false }), (e) =>
    isCseError(e, 'LegacyFormatDisabled'),
  );
});

test('DataLength above the maximum is RegionTooLarge (default 64 MiB), before any key is contacted', async () => {
  const untouchable: KeyResolver = {
    resolve: async () => {
      throw new Error('the key must not be contacted');
    },
  };
  const at = (dataLength: number) =>
    JSON.stringify({
      WrappedContentKey: { KeyId: 'k', EncryptedKey: 'AAAA', Algorithm: 'A256KW' },
      EncryptionAgent: { Protocol: '2.1', EncryptionAlgorithm: 'AES_GCM_256' },
      EncryptedRegionInfo: { DataLength: dataLength, NonceLength: 12 },
    });
  assert.equal(DEFAULT_MAX_REGION_LENGTH, 64 * MiB);
  await assert.rejects(openBlobDecryption(at(64 * MiB + 1), untouchable, { allowV1: false }), (e) => {
    return isCseError(e, 'RegionTooLarge') && e.message.includes(String(64 * MiB + 1));
  });
  await assert.rejects(
    openBlobDecryption(at(1 * MiB + 1), untouchable, { allowV1: false, maxRegionLength: MiB }),
    (e) => isCseError(e, 'RegionTooLarge'),
  );
  // At the maximum it proceeds to the key (and here fails there).
  await assert.rejects(openBlobDecryption(at(64 * MiB), untouchable, { allowV1: false }), /must not be contacted/);
});

test('v2.1 with small regions: whole and every range match (property)', async () => {
  const plaintext = randomBytes(300);
  for (const regionLength of [16, 17, 64]) {
    const blob = await makeV2Blob(oct, plaintext, { protocol: '2.1', regionLength });
    const d = await openBlobDecryption(blob.metadataValue, ring, { allowV1: false });
    assert.equal(d.protocol, '2.1');
    assert.deepEqual(await decryptBlob(blob.metadataValue, blob.stored, ring, { allowV1: false }), plaintext);
    await fc.assert(
      fc.asyncProperty(fc.nat(299), fc.nat(299), async (a, b) => {
        const [start, end] = [Math.min(a, b), Math.max(a, b)];
        assert.deepEqual(await readRange(d, blob.stored, { start, end }), plaintext.subarray(start, end + 1));
      }),
      { numRuns: 60 },
    );
  }
});

test('all three SDK nonce schemes are read, whole and from any starting region', async () => {
  const plaintext = randomBytes(200);
  for (const scheme of ['python', 'java', 'dotnet'] as NonceScheme[]) {
    const blob = await makeV2Blob(oct, plaintext, { protocol: '2.1', regionLength: 16, scheme });
    const d = await openBlobDecryption(blob.metadataValue, ring, { allowV1: false });
    assert.deepEqual(await decryptBlob(blob.metadataValue, blob.stored, ring, { allowV1: false }), plaintext, scheme);
    for (const start of [0, 16, 40, 190]) {
      assert.deepEqual(
        await readRange(d, blob.stored, { start, end: 199 }),
        plaintext.subarray(start),
        `${scheme} @${start}`,
      );
    }
  }
  assert.equal(sdkNonce('dotnet', 0).toString('hex'), '000000000100000000000000');
  assert.equal(sdkNonce('java', 1).toString('hex'), '000000000000000100000000');
});

test('nonce order: mixing schemes or random nonces fails (unless the opt-out is set); one scheme per download', async () => {
  const plaintext = randomBytes(64);
  const cek = randomBytes(32);
  const base = await makeV2Blob(oct, plaintext, { protocol: '2.1', regionLength: 16, cek });
  const regionWith = async (nonces: Buffer[]) => {
    return Buffer.concat(v2Regions(plaintext, cek, 16, (i) => nonces[i]!));
  };
  const mixed = await regionWith([
    sdkNonce('python', 0),
    sdkNonce('java', 1),
    sdkNonce('python', 2),
    sdkNonce('python', 3),
  ]);
  const random = await regionWith([randomBytes(12), randomBytes(12), randomBytes(12), randomBytes(12)]);
  for (const stored of [mixed, random]) {
    await assert.rejects(decryptBlob(base.metadataValue, stored, ring, { allowV1: false }), (e) => {
      return isCseError(e, 'IntegrityCheckFailed') && /out-of-order nonce in region \d/.test(e.message);
    });
    const opted = await decryptBlob(base.metadataValue, stored, ring, { allowV1: false, allowMisorderedRegions: true });
    assert.deepEqual(opted, plaintext);
  }
});

test('empty content: whole read yields nothing; every range is unsatisfiable', async () => {
  const v = loadManifest().blob.find((x) => x.id === 'blob-v2-oct-0')!;
  const { metadata, stored } = vectorFiles(v);
  const d = await openBlobDecryption(metadata, ring, { allowV1: false });
  const plan = d.planWhole(0);
  assert.deepEqual([plan.cipherOffset, plan.cipherCount], [0, 0]);
  assert.equal((await collect(d.decryptRange(chunksOf(stored), plan))).length, 0);
  await assert.rejects(decryptBlob(metadata, stored, ring, { allowV1: false, range: bounded(0, 0) }), (e) =>
    isCseError(e, 'RangeNotSatisfiable'),
  );
  assert.throws(
    () => d.planRange({ start: 0, end: 0 }, 0),
    (e) => isCseError(e, 'InvalidRange'),
  );
});

// ---------------------------------------------------------------------------------------------------------------
// v1 (CBC) specifics

/** A v1 blob built with node's CBC directly (the project has no v1 writer, on purpose). */
async function makeV1Blob(plaintext: Buffer): Promise<{ metadata: string; stored: Buffer }> {
  const cek = randomBytes(32);
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', cek, iv);
  const stored = Buffer.concat([c.update(plaintext), c.final()]);
  const metadata = JSON.stringify({
    WrappedContentKey: {
      KeyId: oct.keyId,
      EncryptedKey: (await oct.wrapKey('A256KW', cek)).toString('base64'),
      Algorithm: 'A256KW',
    },
    EncryptionAgent: { Protocol: '1.0', EncryptionAlgorithm: 'AES_CBC_256' },
    ContentEncryptionIV: iv.toString('base64'),
    KeyWrappingMetadata: { EncryptionLibrary: 'test' },
    EncryptionMode: 'FullBlob',
  });
  return { metadata, stored };
}

test('v1: every range of blobs around block boundaries (property)', async () => {
  for (const size of [1, 15, 16, 17, 31, 32, 33, 100]) {
    const plaintext = randomBytes(size);
    const { metadata, stored } = await makeV1Blob(plaintext);
    const d = await openBlobDecryption(metadata, ring, { allowV1: true });
    assert.equal(await d.plaintextLength(stored.length, async (o, n) => stored.subarray(o, o + n)), size);
    await fc.assert(
      fc.asyncProperty(fc.nat(size - 1), fc.nat(size - 1), async (a, b) => {
        const [start, end] = [Math.min(a, b), Math.max(a, b)];
        assert.deepEqual(await readRange(d, stored, { start, end }), plaintext.subarray(start, end + 1));
      }),
      { numRuns: 40 },
    );
  }
});

test('v1: padding failures, wrong keys and truncation all give the same error', async () => {
  const plaintext = Buffer.alloc(40, 0x41); // 48 stored bytes, padding 8; 'A' = 65 is never valid padding
  const { metadata, stored } = await makeV1Blob(plaintext);
  const messages = new Set<string>();
  const expectFailure = async (p: Promise<unknown>, what: string) => {
    await assert.rejects(p, (e) => {
      assert.ok(isCseError(e, 'IntegrityCheckFailed'), `${what}: ${String(e)}`);
      messages.add(e.message);
      return true;
    });
  };
  // Padding made invalid in a controlled way: CBC lets the previous block's bytes XOR into the last plaintext.
  for (const padTo of [0, 17, 9]) {
    const bad = Buffer.from(stored);
    bad[31]! ^= 8 ^ padTo; // last byte of block 1 -> last plaintext byte becomes padTo
    const d = await openBlobDecryption(metadata, ring, { allowV1: true });
    await expectFailure(
      d.plaintextLength(bad.length, async (o, n) => bad.subarray(o, o + n)),
      `pad ${padTo} (length)`,
    );
    await expectFailure(decryptBlob(metadata, bad, ring, { allowV1: true }), `pad ${padTo} (whole)`);
    await expectFailure(
      decryptBlob(metadata, bad, ring, { allowV1: true, range: bounded(30, 39) }),
      `pad ${padTo} (ranged)`,
    );
  }
  // A different key (same id, so the unwrap itself fails), truncation, and a stored length not of whole blocks.
  const otherRing = parseJwkSet(
    JSON.stringify({ keys: [{ kid: oct.keyId, kty: 'oct', alg: 'A256KW', k: randomBytes(32).toString('base64url') }] }),
    'other',
  );
  await expectFailure(decryptBlob(metadata, stored, otherRing, { allowV1: true }), 'wrong key');
  await expectFailure(decryptBlob(metadata, stored.subarray(0, 32), ring, { allowV1: true }), 'truncated by a block');
  await expectFailure(decryptBlob(metadata, stored.subarray(0, 47), ring, { allowV1: true }), 'truncated mid-block');
  const d = await openBlobDecryption(metadata, ring, { allowV1: true });
  await expectFailure(collect(d.decryptRange(chunksOf(stored.subarray(0, 40)), d.planWhole(48))), 'short stream');
  assert.equal(messages.size, 1, `one message for every failure, got ${[...messages].join(' | ')}`);
});
