/** Writer -> reader round trips through the streaming APIs, whole and by range, at the sizes that matter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { openBlobDecryption, type BlobDecryptor } from '../../../shared/crypto/blobDecryption';
import { startBlobEncryption } from '../../../shared/crypto/blobEncryption';
import { chunksOf, collect } from '../../../shared/crypto/byteChunks';
import { resolveRange, type RangeRequest } from '../../../shared/crypto/httpRange';
import { REGION_LENGTH, v2CipherLength } from '../../../shared/crypto/regionMath';
import { vectorKeyRing } from '../../helpers/vectors';

const ring = vectorKeyRing();
const R = REGION_LENGTH;
const SIZES = [0, 1, 15, 16, 17, R - 1, R, R + 1, 9 * 1024 * 1024];

async function encrypt(kid: string, plaintext: Buffer): Promise<{ metadataValue: string; stored: Buffer }> {
  const session = await startBlobEncryption(ring.get(kid)!);
  const stored = await collect(session.encrypt(chunksOf(plaintext, 65_536 + 7)));
  return { metadataValue: session.metadataValue, stored };
}

async function readRange(d: BlobDecryptor, stored: Buffer, req: RangeRequest): Promise<Buffer | 'unsatisfiable'> {
  const total = await d.plaintextLength(stored.length, async () => assert.fail('v2 sizes need no reads'));
  const span = resolveRange(req, total);
  if (span === 'unsatisfiable') return span;
  const plan = d.planRange(span, stored.length);
  const slice = stored.subarray(plan.cipherOffset, plan.cipherOffset + plan.cipherCount);
  return collect(d.decryptRange(chunksOf(slice, 100_003), plan));
}

function slice(plaintext: Buffer, req: RangeRequest): Buffer | 'unsatisfiable' {
  const span = resolveRange(req, plaintext.length);
  return span === 'unsatisfiable' ? span : plaintext.subarray(span.start, span.end + 1);
}

test('round trips at 0, 1, 15, 16, 17, 4 MiB - 1, 4 MiB, 4 MiB + 1 and 9 MiB (oct key)', async () => {
  for (const size of SIZES) {
    const plaintext = randomBytes(size);
    const { metadataValue, stored } = await encrypt('local:kek-1', plaintext);
    assert.equal(stored.length, v2CipherLength(size), `size ${size}: stored length`);
    const d = await openBlobDecryption(metadataValue, ring, { allowV1: false });
    const whole = await collect(d.decryptRange(chunksOf(stored, 1 << 20), d.planWhole(stored.length)));
    assert.ok(whole.equals(plaintext), `size ${size}: whole`);
  }
});

test('round trip with an RSA-OAEP key', async () => {
  const plaintext = randomBytes(R + 3);
  const { metadataValue, stored } = await encrypt('local:rsa-1', plaintext);
  const d = await openBlobDecryption(metadataValue, ring, { allowV1: false });
  assert.equal(d.keyId, 'local:rsa-1');
  assert.ok((await collect(d.decryptRange(chunksOf(stored), d.planWhole(stored.length)))).equals(plaintext));
});

test('ranges at every size: edges, region boundaries, suffixes, open ends', async () => {
  for (const size of SIZES) {
    const plaintext = randomBytes(size);
    const { metadataValue, stored } = await encrypt('local:kek-1', plaintext);
    const d = await openBlobDecryption(metadataValue, ring, { allowV1: false });
    const requests: RangeRequest[] = [
      { kind: 'bounded', start: 0, end: 0 },
      { kind: 'bounded', start: 0, end: size + 10 },
      { kind: 'from', start: Math.max(0, size - 1) },
      { kind: 'suffix', length: 1 },
      { kind: 'suffix', length: 17 },
      { kind: 'bounded', start: R - 1, end: R }, // crosses region 0/1
      { kind: 'bounded', start: R - 5, end: 2 * R + 5 }, // three regions
      { kind: 'bounded', start: R, end: R }, // first byte of region 1
      { kind: 'bounded', start: 2 * R - 1, end: 2 * R }, // crosses region 1/2
      { kind: 'from', start: R + 1 },
      { kind: 'bounded', start: 15, end: 16 },
      { kind: 'bounded', start: size, end: size + 1 }, // past the end
    ];
    for (const req of requests) {
      const got = await readRange(d, stored, req);
      const want = slice(plaintext, req);
      if (want === 'unsatisfiable') assert.equal(got, 'unsatisfiable', `size ${size} ${JSON.stringify(req)}`);
      else assert.ok(got !== 'unsatisfiable' && got.equals(want), `size ${size} ${JSON.stringify(req)}`);
    }
  }
});

test('random ranges of a 9 MiB blob (property)', async () => {
  const plaintext = randomBytes(9 * 1024 * 1024);
  const { metadataValue, stored } = await encrypt('local:kek-1', plaintext);
  const d = await openBlobDecryption(metadataValue, ring, { allowV1: false });
  const position = fc.oneof(
    fc.integer({ min: 0, max: plaintext.length - 1 }),
    fc
      .tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: -2, max: 2 }))
      .map(([k, d]) => Math.min(plaintext.length - 1, Math.max(0, (k + 1) * R + d))),
  );
  await fc.assert(
    fc.asyncProperty(position, position, async (a, b) => {
      const req: RangeRequest = { kind: 'bounded', start: Math.min(a, b), end: Math.max(a, b) };
      const got = await readRange(d, stored, req);
      assert.ok(got !== 'unsatisfiable' && got.equals(plaintext.subarray(req.start, req.end + 1)));
    }),
    { numRuns: 25 },
  );
});
