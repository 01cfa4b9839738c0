import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeBase64Strict, decodeBase64UrlStrict } from '../../../shared/crypto/strictBase64';

test('decodeBase64Strict accepts canonical padded base64 of every length class', () => {
  for (const n of [0, 1, 2, 3, 4, 31, 40, 256]) {
    const bytes = randomBytes(n);
    assert.deepEqual(decodeBase64Strict(bytes.toString('base64')), bytes, `length ${n}`);
  }
});

test('decodeBase64Strict refuses what Buffer.from would silently accept', () => {
  for (const bad of ['AAA', 'AA=', 'A===', 'AA=A', 'AAAA=', 'AA==AA==', 'AA AA', 'AA-_', 'AA\nAA==', '====']) {
    assert.equal(decodeBase64Strict(bad), undefined, JSON.stringify(bad));
  }
});

test('decodeBase64Strict runs in linear time on multi-MiB input (no regexp stack overflow)', () => {
  const bytes = randomBytes(6 * 1024 * 1024);
  assert.deepEqual(decodeBase64Strict(bytes.toString('base64')), bytes);
  assert.equal(decodeBase64Strict(bytes.toString('base64') + 'A'), undefined);
});

test('decodeBase64UrlStrict takes unpadded base64url only', () => {
  const bytes = randomBytes(32);
  assert.deepEqual(decodeBase64UrlStrict(bytes.toString('base64url')), bytes);
  assert.equal(decodeBase64UrlStrict(bytes.toString('base64')), undefined);
  assert.equal(decodeBase64UrlStrict('A'), undefined);
});
