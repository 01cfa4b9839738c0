import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { unwrapContentKey, wrapContentKey } from '../../../shared/crypto/keyWrapPayload';
import { parseEncryptionData } from '../../../shared/crypto/encryptionData';
import type { KeyEncryptionKey, KeyResolver, WrapAlgorithm } from '../../../shared/keys/kek';
import { createLocalKey } from '../../../shared/keys/localKeys';
import { isCseError, type CseErrorCode } from '../../../shared/errors';
import { loadManifest, vectorKeyRing, vectorPath } from '../../helpers/vectors';

const OCT = createLocalKey({
  kid: 'local:key1',
  kty: 'oct',
  alg: 'A256KW',
  k: Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64url'),
});
const RESOLVER: KeyResolver = { resolve: async () => OCT };
const CEK = Buffer.alloc(32, 0x11);

/** A KEK that records what it was asked to wrap, and unwraps to a chosen payload (to test the prefix check). */
function fakeKek(unwrapsTo: Buffer): KeyEncryptionKey & { wrapped: Buffer[] } {
  const wrapped: Buffer[] = [];
  return {
    keyId: 'fake',
    defaultAlgorithm: 'A256KW',
    wrapped,
    async wrapKey(_alg: WrapAlgorithm, key: Uint8Array) {
      wrapped.push(Buffer.from(key));
      return Buffer.from('w');
    },
    async unwrapKey() {
      return Buffer.from(unwrapsTo);
    },
  };
}

async function rejectsWith(p: Promise<unknown>, code: CseErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e) => isCseError(e, code) && (message === undefined || message.test(e.message)));
}

test('v2 wraps "2.0"‖00×5‖CEK (FORMAT.md §1.5 known answer) and unwraps back to the CEK', async () => {
  const w = await wrapContentKey(OCT, CEK, '2.0');
  assert.equal(w.keyId, 'local:key1');
  assert.equal(w.algorithm, 'A256KW');
  assert.equal(w.encryptedKey.toString('base64'), 'Y10mpREhuBOxrieJdFp/2/jW+jgjH2KFpGgseeWHHHLlq+azTVPS3dybi0VgH9gi');
  assert.deepEqual(await unwrapContentKey(RESOLVER, w, '2.0'), CEK);
});

test('v1 wraps the bare CEK (FORMAT.md §1.5 known answer)', async () => {
  const w = await wrapContentKey(OCT, CEK, '1.0');
  assert.equal(w.encryptedKey.toString('base64'), 'gBtSHZV+WjYCvRijsRUSzJ+wgi3Q00lpEj2osdq36AcqW+Vuybf0yQ==');
  assert.deepEqual(await unwrapContentKey(RESOLVER, w, '1.0'), CEK);
});

test('wrapping refuses a content key that is not 32 bytes', async () => {
  await rejectsWith(wrapContentKey(OCT, Buffer.alloc(16), '2.0'), 'InvalidKey');
});

test('every vector: the unwrapped CEK is the documented one', async () => {
  const ring = vectorKeyRing();
  for (const v of loadManifest().blob) {
    const data = parseEncryptionData(readFileSync(vectorPath(v.encryptiondata_file), 'utf8'));
    const cek = await unwrapContentKey(ring, data.wrappedContentKey, data.protocol);
    assert.equal(cek.toString('hex'), v.cek_hex, v.id);
  }
});

test('protocol edits are caught by the prefix: 2.0 read as 2.1 or 1.0, 1.0 read as 2.0', async () => {
  const v2 = await wrapContentKey(OCT, CEK, '2.0');
  await rejectsWith(unwrapContentKey(RESOLVER, v2, '2.1'), 'IntegrityCheckFailed', /protocol 2\.1 prefix/);
  await rejectsWith(unwrapContentKey(RESOLVER, v2, '1.0'), 'IntegrityCheckFailed', /wrong length/);
  const v1 = await wrapContentKey(OCT, CEK, '1.0');
  await rejectsWith(unwrapContentKey(RESOLVER, v1, '2.0'), 'IntegrityCheckFailed', /prefix/);
});

test('the v2 check is strict: exact length, protocol bytes and zero padding', async () => {
  const good = Buffer.concat([Buffer.from('2.0'), Buffer.alloc(5), CEK]);
  const wrapped = { keyId: 'fake', algorithm: 'A256KW', encryptedKey: Buffer.from('x') };
  const resolverFor = (payload: Buffer): KeyResolver => ({ resolve: async () => fakeKek(payload) });
  assert.deepEqual(await unwrapContentKey(resolverFor(good), wrapped, '2.0'), CEK);
  const variants: Buffer[] = [
    Buffer.concat([good, Buffer.alloc(1)]), // 41 bytes
    good.subarray(0, 39), // 39 bytes
    Buffer.concat([Buffer.from('2.0'), Buffer.from([0, 0, 0, 0, 1]), CEK]), // non-zero padding
    Buffer.concat([Buffer.from('2.0 '), Buffer.alloc(4), CEK]), // space instead of NUL
    Buffer.concat([Buffer.from('2.1'), Buffer.alloc(5), CEK]),
    Buffer.concat([Buffer.alloc(8), CEK]),
  ];
  for (const payload of variants) {
    await rejectsWith(unwrapContentKey(resolverFor(payload), wrapped, '2.0'), 'IntegrityCheckFailed');
  }
});

test('v2.1 payloads use the 2.1 prefix', async () => {
  const payload = Buffer.concat([Buffer.from('2.1'), Buffer.alloc(5), CEK]);
  const w = { keyId: 'local:key1', algorithm: 'A256KW', encryptedKey: await OCT.wrapKey('A256KW', payload) };
  assert.deepEqual(await unwrapContentKey(RESOLVER, w, '2.1'), CEK);
  await rejectsWith(unwrapContentKey(RESOLVER, w, '2.0'), 'IntegrityCheckFailed');
});

test('wrapContentKey hands the KEK the exact 40-byte payload', async () => {
  const kek = fakeKek(Buffer.alloc(0));
  await wrapContentKey(kek, CEK, '2.0');
  assert.equal(kek.wrapped[0]?.toString('hex'), '322e300000000000' + '11'.repeat(32));
});

test('wrong key, edited EncryptedKey, unknown Algorithm, unknown KeyId: typed errors', async () => {
  const ring = vectorKeyRing();
  const w = await wrapContentKey(ring.get('local:kek-1')!, CEK, '2.0');
  await rejectsWith(
    unwrapContentKey(ring, { ...w, keyId: 'local:rsa-1', algorithm: 'RSA-OAEP' }, '2.0'),
    'IntegrityCheckFailed',
  );
  const flipped = Buffer.from(w.encryptedKey);
  flipped[0]! ^= 0x80;
  await rejectsWith(unwrapContentKey(ring, { ...w, encryptedKey: flipped }, '2.0'), 'IntegrityCheckFailed');
  await rejectsWith(unwrapContentKey(ring, { ...w, algorithm: 'RSA-OAEP' }, '2.0'), 'UnsupportedAlgorithm');
  await rejectsWith(unwrapContentKey(ring, { ...w, algorithm: 'A128KW' }, '2.0'), 'UnsupportedAlgorithm');
  await rejectsWith(unwrapContentKey(ring, { ...w, keyId: 'local:other' }, '2.0'), 'KeyNotFound');
});

test('a KEK throwing a non-CseError becomes IntegrityCheckFailed', async () => {
  const kek: KeyEncryptionKey = {
    keyId: 'x',
    defaultAlgorithm: 'A256KW',
    wrapKey: async () => Buffer.alloc(0),
    unwrapKey: async () => {
      throw new Error('boom');
    },
  };
  await rejectsWith(
    unwrapContentKey(
      { resolve: async () => kek },
      { keyId: 'x', algorithm: 'A256KW', encryptedKey: Buffer.from('a') },
      '2.0',
    ),
    'IntegrityCheckFailed',
  );
});
