import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createLocalKey,
  generateDevelopmentKeySet,
  loadLocalKeys,
  parseJwkSet,
  LocalKeyRing,
} from '../../../shared/keys/localKeys';
import { isCseError, type CseErrorCode } from '../../../shared/errors';
import { vectorJwkSetJson, vectorPath } from '../../helpers/vectors';

const KEK_BYTES = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const OCT = { kid: 'local:key1', kty: 'oct', alg: 'A256KW', k: KEK_BYTES.toString('base64url') };

function rsaJwk(kid: string, alg: string, modulusLength = 2048): Record<string, string> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength });
  return { ...(privateKey.export({ format: 'jwk' }) as Record<string, string>), kid, alg };
}
const RSA = rsaJwk('local:rsa', 'RSA-OAEP');

async function assertRejects(p: Promise<unknown>, code: CseErrorCode): Promise<void> {
  await assert.rejects(p, (e) => isCseError(e, code));
}

function assertInvalidKey(f: () => unknown, reason: RegExp): void {
  assert.throws(f, (e) => {
    if (!isCseError(e, 'InvalidKey')) return false;
    assert.match(e.message, reason);
    return true;
  });
}

test('A256KW wraps as RFC 3394 does (FORMAT.md §1.5 known answers for v1 and v2 payloads)', async () => {
  const key = createLocalKey(OCT);
  assert.equal(key.keyId, 'local:key1');
  assert.equal(key.defaultAlgorithm, 'A256KW');
  const cek = Buffer.alloc(32, 0x11);
  assert.equal(
    (await key.wrapKey('A256KW', cek)).toString('base64'),
    'gBtSHZV+WjYCvRijsRUSzJ+wgi3Q00lpEj2osdq36AcqW+Vuybf0yQ==',
  );
  const v2 = Buffer.concat([Buffer.from('322e300000000000', 'hex'), cek]);
  const wrapped = await key.wrapKey('A256KW', v2);
  assert.equal(wrapped.toString('base64'), 'Y10mpREhuBOxrieJdFp/2/jW+jgjH2KFpGgseeWHHHLlq+azTVPS3dybi0VgH9gi');
  assert.deepEqual(await key.unwrapKey('A256KW', wrapped), v2);
});

test('A256KW: wrong key, tampered input and bad lengths fail the integrity check', async () => {
  const key = createLocalKey(OCT);
  const other = createLocalKey({ ...OCT, k: Buffer.alloc(32, 7).toString('base64url') });
  const wrapped = await key.wrapKey('A256KW', Buffer.alloc(40, 1));
  await assertRejects(other.unwrapKey('A256KW', wrapped), 'IntegrityCheckFailed');
  const tampered = Buffer.from(wrapped);
  tampered[5]! ^= 1;
  await assertRejects(key.unwrapKey('A256KW', tampered), 'IntegrityCheckFailed');
  await assertRejects(key.unwrapKey('A256KW', wrapped.subarray(0, 44)), 'IntegrityCheckFailed');
  await assertRejects(key.unwrapKey('A256KW', Buffer.alloc(0)), 'IntegrityCheckFailed');
  await assertRejects(key.wrapKey('A256KW', Buffer.alloc(12)), 'InvalidKey');
  await assertRejects(key.unwrapKey('RSA-OAEP', wrapped), 'UnsupportedAlgorithm');
  await assertRejects(key.wrapKey('RSA-OAEP-256', Buffer.alloc(32)), 'UnsupportedAlgorithm');
});

test('RSA-OAEP (SHA-1) and RSA-OAEP-256 round trip, agree with node OAEP, and reject the other hash', async () => {
  for (const alg of ['RSA-OAEP', 'RSA-OAEP-256'] as const) {
    const key = createLocalKey({ ...RSA, alg });
    assert.equal(key.defaultAlgorithm, alg);
    const payload = Buffer.alloc(40, 0x42);
    const wrapped = await key.wrapKey(alg, payload);
    assert.equal(wrapped.length, 256);
    assert.deepEqual(await key.unwrapKey(alg, wrapped), payload);
    const otherAlg = alg === 'RSA-OAEP' ? 'RSA-OAEP-256' : 'RSA-OAEP';
    await assertRejects(key.unwrapKey(otherAlg, wrapped), 'IntegrityCheckFailed');
    // A stored key may name either OAEP variant (another SDK chose it): an RSA key unwraps both.
    assert.deepEqual(await key.unwrapKey(otherAlg, await key.wrapKey(otherAlg, payload)), payload);
    await assertRejects(key.unwrapKey('A256KW', wrapped), 'UnsupportedAlgorithm');
  }
});

test('RSA: the wrong key fails with IntegrityCheckFailed', async () => {
  const a = createLocalKey(RSA);
  const b = createLocalKey(rsaJwk('local:rsa', 'RSA-OAEP'));
  await assertRejects(b.unwrapKey('RSA-OAEP', await a.wrapKey('RSA-OAEP', Buffer.alloc(40))), 'IntegrityCheckFailed');
});

test('the vector RSA key (PEM converted to JWK) unwraps the Python SDK vector', async () => {
  const ring = parseJwkSet(vectorJwkSetJson(), 'vectors');
  assert.deepEqual(ring.kids, ['local:kek-1', 'local:rsa-1']);
  // blob-v2-rsa-31: the Python SDK wrapped "2.0"‖00×5‖CEK with OAEP (SHA-1).
  const doc = JSON.parse(readFileSync(vectorPath('blob', 'blob-v2-rsa-31.encryptiondata.json'), 'utf8'));
  const key = ring.get('local:rsa-1')!;
  const payload = await key.unwrapKey('RSA-OAEP', Buffer.from(doc.WrappedContentKey.EncryptedKey, 'base64'));
  assert.equal(
    payload.toString('hex'),
    '322e300000000000c92214b7bab29610b450c1004972212392ca7a8caaa199bce4769ede31bb415b',
  );
});

test('bad JWKs fail with InvalidKey saying why, and never echo key material', () => {
  const secret = OCT.k;
  const cases: [unknown, RegExp][] = [
    ['string', /must be a JSON object/],
    [{ ...OCT, kid: undefined }, /no "kid"/],
    [{ ...OCT, kid: '' }, /no "kid"/],
    [{ ...OCT, alg: 'A128KW' }, /"oct" key must have "alg": "A256KW", got "A128KW"/],
    [{ ...OCT, k: undefined }, /"k" must be base64url/],
    [{ ...OCT, k: secret + '+/' }, /"k" must be base64url/],
    [{ ...OCT, k: Buffer.alloc(16).toString('base64url') }, /"k" must be 32 bytes for A256KW, got 16/],
    [{ ...OCT, kty: 'EC' }, /unsupported "kty" "EC"/],
    [{ ...RSA, alg: 'RS256' }, /must have "alg": "RSA-OAEP" or "RSA-OAEP-256", got "RS256"/],
    [{ ...RSA, d: undefined }, /"d" is missing/],
    [{ ...RSA, qi: undefined }, /"qi" is missing/],
    [{ ...RSA, p: 'not base64url!' }, /"p" must be base64url/],
    [{ ...RSA, n: RSA.e }, /(do not form a valid private key|at least 2048|inconsistent)/],
    [{ ...RSA, d: RSA.p }, /(inconsistent|do not form a valid private key)/],
  ];
  for (const [jwk, reason] of cases) {
    assert.throws(
      () => createLocalKey(jwk),
      (e) => {
        assert.ok(isCseError(e, 'InvalidKey'), String(e));
        assert.match(e.message, reason);
        for (const m of ['k', 'd', 'p', 'q', 'dp', 'dq', 'qi']) {
          const v: unknown = (typeof jwk === 'object' ? (jwk as Record<string, unknown>)[m] : undefined) ?? RSA[m];
          if (typeof v === 'string' && v.length > 8) assert.ok(!e.message.includes(v), `message echoes ${m}`);
        }
        return true;
      },
      `expected InvalidKey ${reason}`,
    );
  }
});

test('RSA keys under 2048 bits are refused', () => {
  assertInvalidKey(() => createLocalKey(rsaJwk('small', 'RSA-OAEP', 1024)), /at least 2048 bits, got 1024/);
});

test('JWK Sets: errors name the source and key index; duplicate kids and empty sets are refused', () => {
  assertInvalidKey(() => parseJwkSet('{"keys": [' + OCT.k, 'keys.json'), /^keys\.json: not valid JSON$/);
  assertInvalidKey(() => parseJwkSet('{"key": []}', 'keys.json'), /keys\.json: expected a JWK Set/);
  assertInvalidKey(() => parseJwkSet('{"keys": []}', 'keys.json'), /keys\.json: the JWK Set has no keys/);
  assertInvalidKey(
    () => parseJwkSet(JSON.stringify({ keys: [OCT, { ...OCT, alg: 'x' }] }), 'keys.json'),
    /keys\.json: key #1: key "local:key1"/,
  );
  assertInvalidKey(
    () => parseJwkSet(JSON.stringify({ keys: [OCT, OCT] }), 'keys.json'),
    /duplicate key id "local:key1"/,
  );
});

test('a key ring looks keys up by kid and resolves them, KeyNotFound otherwise', async () => {
  const ring = parseJwkSet(JSON.stringify({ keys: [OCT, RSA] }), 'test');
  assert.ok(ring instanceof LocalKeyRing);
  assert.deepEqual(ring.kids, ['local:key1', 'local:rsa']);
  assert.equal(ring.get('local:key1')?.defaultAlgorithm, 'A256KW');
  assert.equal(ring.get('nope'), undefined);
  assert.equal((await ring.resolve('local:rsa')).keyId, 'local:rsa');
  await assertRejects(ring.resolve('nope'), 'KeyNotFound');
});

test('loadLocalKeys reads a file; a missing file is a ConfigurationError naming the path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cse-keys-'));
  try {
    const file = join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify({ keys: [OCT] }));
    const ring = await loadLocalKeys(file);
    assert.deepEqual(ring.kids, ['local:key1']);
    await assert.rejects(loadLocalKeys(join(dir, 'missing.json')), (e) => {
      return isCseError(e, 'ConfigurationError') && e.message.includes('missing.json') && e.message.includes('ENOENT');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('generateDevelopmentKeySet makes a fresh usable A256KW key each time', async () => {
  const a = parseJwkSet(generateDevelopmentKeySet('dev:key'), 'gen');
  const b = parseJwkSet(generateDevelopmentKeySet('dev:key'), 'gen');
  assert.deepEqual(a.kids, ['dev:key']);
  const payload = Buffer.alloc(40, 3);
  const wrapped = await a.get('dev:key')!.wrapKey('A256KW', payload);
  assert.deepEqual(await a.get('dev:key')!.unwrapKey('A256KW', wrapped), payload);
  await assertRejects(b.get('dev:key')!.unwrapKey('A256KW', wrapped), 'IntegrityCheckFailed');
});
