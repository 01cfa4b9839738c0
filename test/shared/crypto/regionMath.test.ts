import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AES_BLOCK,
  REGION_LENGTH,
  REGION_OVERHEAD,
  v1BlockSpan,
  v1CipherLength,
  v1PlainLengthBounds,
  v2CipherLength,
  v2PlainLength,
  v2RegionCount,
  v2RegionSpan,
} from '../../../shared/crypto/regionMath';
import { isCseError } from '../../../shared/errors';

const MiB = 1024 * 1024;

/** Lengths clustered around multiples of `unit` (where off-by-one errors live), plus anything. */
function lengthsAround(unit: number, maxUnits = 5): fc.Arbitrary<number> {
  return fc.oneof(
    fc
      .tuple(fc.integer({ min: 0, max: maxUnits }), fc.integer({ min: -3, max: 3 }))
      .map(([k, d]) => Math.max(0, k * unit + d)),
    fc.integer({ min: 0, max: maxUnits * unit + 100 }),
  );
}

const smallRegion = fc.oneof(fc.constant(16), fc.integer({ min: 1, max: 64 }), fc.constant(4096));

test('v2 lengths: the documented examples (FORMAT.md §2.2)', () => {
  const cases: [number, number][] = [
    [0, 0],
    [1, 29],
    [13, 41],
    [4 * MiB - 1, 4194331],
    [4 * MiB, 4194332],
    [4 * MiB + 1, 4194361],
  ];
  for (const [p, c] of cases) {
    assert.equal(v2CipherLength(p), c, `cipher(${p})`);
    assert.equal(v2PlainLength(c), p, `plain(${c})`);
  }
  assert.equal(REGION_LENGTH, 4194304);
  assert.equal(REGION_OVERHEAD, 28);
});

test('v2 lengths: plain -> cipher -> plain is the identity around region boundaries (any region size)', () => {
  fc.assert(
    fc.property(smallRegion, fc.integer({ min: 0, max: 10_000 }), (d, p) => {
      assert.equal(v2PlainLength(v2CipherLength(p, d), d), p);
      assert.equal(v2CipherLength(p, d), p + v2RegionCount(p, d) * 28);
    }),
  );
  fc.assert(
    fc.property(lengthsAround(REGION_LENGTH, 300), (p) => {
      assert.equal(v2PlainLength(v2CipherLength(p)), p);
    }),
  );
});

test('v2 lengths: every stored length is either produced by exactly one plaintext length or rejected', () => {
  fc.assert(
    fc.property(smallRegion, fc.integer({ min: 0, max: 10_000 }), (d, c) => {
      let p: number;
      try {
        p = v2PlainLength(c, d);
      } catch (e) {
        assert.ok(isCseError(e, 'IntegrityCheckFailed'));
        // Rejected lengths end in a partial region of 1..28 bytes, which cannot hold nonce, data and tag.
        const rest = c % (d + 28);
        assert.ok(rest >= 1 && rest <= 28);
        return;
      }
      assert.equal(v2CipherLength(p, d), c);
    }),
  );
});

test('v2 region span: whole regions that contain exactly the requested plaintext', () => {
  fc.assert(
    fc.property(
      smallRegion,
      fc.integer({ min: 1, max: 2_000 }),
      fc.integer({ min: 0, max: 1_999 }),
      fc.integer({ min: 0, max: 1_999 }),
      (d, plainLength, a, b) => {
        const start = Math.min(a, b) % plainLength;
        const end = Math.min(Math.max(a, b) % plainLength, plainLength - 1);
        if (end < start) return;
        const span = v2RegionSpan(start, end, d);
        const stored = d + 28;
        assert.equal(span.firstRegion, Math.floor(start / d));
        assert.equal(span.lastRegion, Math.floor(end / d));
        assert.equal(span.cipherOffset, span.firstRegion * stored, 'starts on a region boundary');
        assert.equal(span.cipherCount % stored, 0, 'whole regions');
        assert.equal(span.skip, start - span.firstRegion * d);
        assert.ok(span.skip < d);
        // Clamped to the real blob, the last region may be short; it still ends on the blob's last byte or a boundary.
        const cipherLength = v2CipherLength(plainLength, d);
        const clampedEnd = Math.min(span.cipherOffset + span.cipherCount, cipherLength);
        assert.ok(clampedEnd === cipherLength || clampedEnd % stored === 0);
        // The regions read hold plaintext [firstRegion*d, ...) which covers [start, end].
        const plainInRead = v2PlainLength(clampedEnd - span.cipherOffset, d);
        assert.ok(span.skip + (end - start + 1) <= plainInRead);
        // And no region more than needed.
        assert.ok(plainInRead - (span.skip + (end - start + 1)) < d);
      },
    ),
  );
});

test('v2 region span at the 4 MiB boundary', () => {
  assert.deepEqual(v2RegionSpan(REGION_LENGTH - 1, REGION_LENGTH, REGION_LENGTH), {
    firstRegion: 0,
    lastRegion: 1,
    cipherOffset: 0,
    cipherCount: 2 * (REGION_LENGTH + 28),
    skip: REGION_LENGTH - 1,
  });
  assert.deepEqual(v2RegionSpan(REGION_LENGTH, REGION_LENGTH, REGION_LENGTH), {
    firstRegion: 1,
    lastRegion: 1,
    cipherOffset: REGION_LENGTH + 28,
    cipherCount: REGION_LENGTH + 28,
    skip: 0,
  });
  // Ending exactly on a region's last byte does not pull in the next region.
  assert.equal(v2RegionSpan(0, REGION_LENGTH - 1).lastRegion, 0);
});

test('FORMAT.md §4.2 worked example: D = 16, plaintext 20..33 -> stored 44..131, drop 4', () => {
  const span = v2RegionSpan(20, 33, 16);
  assert.equal(span.cipherOffset, 44);
  assert.equal(span.cipherOffset + span.cipherCount - 1, 131);
  assert.equal(span.skip, 4);
});

test('v1 lengths: always 1..16 bytes of padding; bounds invert it', () => {
  assert.equal(v1CipherLength(0), 16);
  assert.equal(v1CipherLength(15), 16);
  assert.equal(v1CipherLength(16), 32);
  assert.equal(v1CipherLength(17), 32);
  fc.assert(
    fc.property(lengthsAround(AES_BLOCK, 1000), (p) => {
      const c = v1CipherLength(p);
      assert.ok(c - p >= 1 && c - p <= 16 && c % 16 === 0);
      const { min, max } = v1PlainLengthBounds(c);
      assert.ok(min <= p && p <= max);
    }),
  );
  for (const bad of [0, 1, 15, 17, 33]) {
    assert.throws(
      () => v1PlainLengthBounds(bad),
      (e) => isCseError(e, 'IntegrityCheckFailed'),
    );
  }
});

test('v1 block span: whole blocks plus the IV block, covering exactly the range', () => {
  fc.assert(
    fc.property(lengthsAround(AES_BLOCK, 100), fc.nat(), fc.nat(), (plainLength, a, b) => {
      if (plainLength === 0) return;
      const start = Math.min(a, b) % plainLength;
      const end = Math.max(start, Math.max(a, b) % plainLength);
      const span = v1BlockSpan(start, end);
      assert.equal(span.cipherOffset % 16, 0);
      assert.equal(span.cipherCount % 16, 0);
      assert.equal(span.ivFromMetadata, start < 16);
      // The first decrypted byte is plaintext position cipherOffset (+16 when a stored block serves as IV).
      const firstPlain = span.ivFromMetadata ? 0 : span.cipherOffset + 16;
      assert.equal(firstPlain + span.skip, start);
      assert.ok(span.skip < 16);
      const lastPlain = span.cipherOffset + span.cipherCount - 1;
      assert.ok(lastPlain >= end && lastPlain - end < 16);
      assert.ok(span.cipherOffset + span.cipherCount <= v1CipherLength(plainLength), 'never past the blob');
    }),
  );
});

test('invalid ranges are CseError InvalidRange', () => {
  for (const [s, e] of [
    [5, 4],
    [-1, 3],
    [0.5, 3],
  ] as const) {
    assert.throws(
      () => v2RegionSpan(s, e),
      (err) => isCseError(err, 'InvalidRange'),
    );
    assert.throws(
      () => v1BlockSpan(s, e),
      (err) => isCseError(err, 'InvalidRange'),
    );
  }
});
