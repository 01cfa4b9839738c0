/**
 * The worked example of docs/TABLE-FORMAT.md (protocol 2.0), pinned. The values were cross-checked with an
 * independent implementation (Python `cryptography` AESGCM with the documented associated data).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalKey } from '../../../shared/keys/localKeys';
import { wrapContentKey } from '../../../shared/crypto/keyWrapPayload';
import { decryptEntity } from '../../../shared/tables/entityEncryption';
import { properties, tv } from '../../../shared/tables/entityModel';
import { tableAad, v2Decrypt, v2Encrypt } from '../../../shared/tables/propertyCipher';

const CEK = Buffer.alloc(32, 0x11);
const KEK = createLocalKey({
  kid: 'local:key1',
  kty: 'oct',
  alg: 'A256KW',
  k: Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64url'),
});
const at = { partitionKey: 'tenant-1', rowKey: 'user-42', name: 'Email' };

const EXAMPLE = {
  aadEmailHex:
    '0000001d617a7572652d6373652d66756e6374696f6e732f7461626c652f322e30' +
    '0000000874656e616e742d31' +
    '00000007757365722d3432' +
    '00000005456d61696c',
  email: 'IiIiIiIiIiIiIiIidptuKqWP+ieEUq5QLYiKunKkv9u0KokGa8ZRanHS35SC',
  nameList: 'MzMzMzMzMzMzMzMz36EXK6v7GQ7vFAGJ4z80pfK2CBODcn2kfQ==',
  metadata1:
    '{"WrappedContentKey":{"KeyId":"local:key1","EncryptedKey":"Y10mpREhuBOxrieJdFp/2/jW+jgjH2KFpGgseeWHHHLlq+azTVPS3dybi0VgH9gi","Algorithm":"A256KW"},' +
    '"EncryptionAgent":{"Protocol":"2.0","EncryptionAlgorithm":"AES_GCM_256"},"KeyWrappingMetadata":{"EncryptionLibrary":"azure-cse-functions"}}',
};

describe('protocol 2.0 worked example (docs/TABLE-FORMAT.md)', () => {
  it('associated data', () => {
    assert.equal(tableAad(at).toString('hex'), EXAMPLE.aadEmailHex);
  });

  it('property and name-list ciphertext with the documented nonces', () => {
    assert.equal(
      v2Encrypt(CEK, at, Buffer.from('alice@example.com'), Buffer.alloc(12, 0x22)).toString('base64'),
      EXAMPLE.email,
    );
    const listAt = { ...at, name: '_ClientEncryptionMetadata2' };
    assert.equal(
      v2Encrypt(CEK, listAt, Buffer.from('["Email"]'), Buffer.alloc(12, 0x33)).toString('base64'),
      EXAMPLE.nameList,
    );
    assert.equal(v2Decrypt(CEK, at, Buffer.from(EXAMPLE.email, 'base64'), 'Email').toString(), 'alice@example.com');
  });

  it('the wrapped key, and the whole example entity decrypts', async () => {
    const wrapped = await wrapContentKey(KEK, CEK, '2.0');
    assert.equal(wrapped.encryptedKey.toString('base64'), JSON.parse(EXAMPLE.metadata1).WrappedContentKey.EncryptedKey);
    const stored = {
      partitionKey: 'tenant-1',
      rowKey: 'user-42',
      properties: properties([
        ['Email', tv.binary(Buffer.from(EXAMPLE.email, 'base64'))],
        ['City', tv.string('Oslo')],
        ['_ClientEncryptionMetadata2', tv.binary(Buffer.from(EXAMPLE.nameList, 'base64'))],
        ['_ClientEncryptionMetadata1', tv.string(EXAMPLE.metadata1)],
      ]),
    };
    const resolver = { resolve: async () => KEK };
    const out = await decryptEntity(stored, { resolver, allowV1: false });
    assert.deepEqual(out.properties, { Email: tv.string('alice@example.com'), City: tv.string('Oslo') });
  });
});
