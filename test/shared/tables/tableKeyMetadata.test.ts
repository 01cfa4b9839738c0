import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import { generateDevelopmentKeySet, parseJwkSet } from '../../../shared/keys/localKeys';
import {
  parseTableKeyMetadata,
  rewrapTableKeyMetadata,
  serializeTableKeyMetadata,
  unwrapEntityKey,
  usesLegacyJavaLayout,
} from '../../../shared/tables/tableKeyMetadata';
import { microsoftKek, microsoftVectors, recordingResolver, requestBody, tableVectors } from './tableFixtures';

const V2 =
  '{"WrappedContentKey":{"KeyId":"local:k","EncryptedKey":"AAAA","Algorithm":"A256KW"},' +
  '"EncryptionAgent":{"Protocol":"2.0","EncryptionAlgorithm":"AES_GCM_256"},"KeyWrappingMetadata":{"EncryptionLibrary":"x"}}';

describe('_ClientEncryptionMetadata1', () => {
  it('reads the Python vectors (1.0) and keeps KeyWrappingMetadata', () => {
    for (const v of tableVectors()) {
      const m = parseTableKeyMetadata(requestBody(v)['_ClientEncryptionMetadata1'] as string);
      assert.equal(m.protocol, '1.0');
      assert.equal(m.protocol === '1.0' && m.entityIv.toString('hex'), v.entity_iv_hex);
      assert.equal(m.wrappedContentKey.keyId, v.kid);
      assert.deepEqual(m.keyWrappingMetadata, { EncryptionLibrary: 'Python 1.4.2' });
      assert.equal(usesLegacyJavaLayout(m), false);
    }
  });

  it('detects the legacy Java layout: no KeyWrappingMetadata, null, or a "Java" library; {} is not Java', () => {
    const [net, java] = microsoftVectors().entities;
    assert.equal(usesLegacyJavaLayout(parseTableKeyMetadata(net!._ClientEncryptionMetadata1)), false);
    assert.equal(usesLegacyJavaLayout(parseTableKeyMetadata(java!._ClientEncryptionMetadata1)), true);
    const withKwm = (kwm: string): string =>
      net!._ClientEncryptionMetadata1.replace('"KeyWrappingMetadata":{}', `"KeyWrappingMetadata":${kwm}`);
    assert.equal(usesLegacyJavaLayout(parseTableKeyMetadata(withKwm('null'))), true);
    assert.equal(usesLegacyJavaLayout(parseTableKeyMetadata(withKwm('{"EncryptionLibrary":"Java 8.6.0"}'))), true);
    assert.equal(usesLegacyJavaLayout(parseTableKeyMetadata(withKwm('{"EncryptionLibrary":".NET 9.3"}'))), false);
    assert.equal(usesLegacyJavaLayout(parseTableKeyMetadata(V2.replace('"x"', '"Java"'))), false); // 2.0 never
  });

  it('round-trips 1.0 and 2.0 through serialize / parse (compact, .NET member order)', () => {
    const v1 = parseTableKeyMetadata(microsoftVectors().entities[0]!._ClientEncryptionMetadata1);
    assert.equal(serializeTableKeyMetadata(v1), microsoftVectors().entities[0]!._ClientEncryptionMetadata1);
    const java = parseTableKeyMetadata(microsoftVectors().entities[1]!._ClientEncryptionMetadata1);
    assert.equal(serializeTableKeyMetadata(java), microsoftVectors().entities[1]!._ClientEncryptionMetadata1);
    assert.equal(serializeTableKeyMetadata(parseTableKeyMetadata(V2)), V2);
  });

  it('refuses other protocols and broken documents with typed errors', () => {
    const cases: [string, string][] = [
      [V2.replace('"2.0"', '"2.1"'), 'UnsupportedProtocol'],
      [V2.replace('"2.0"', '"3.0"'), 'UnsupportedProtocol'],
      [V2.replace('AES_GCM_256', 'AES_CBC_256'), 'UnsupportedProtocol'],
      [V2.replace('"AAAA"', '"not base64!"'), 'InvalidEncryptionData'],
      [V2.replace('"KeyId":"local:k",', ''), 'InvalidEncryptionData'],
      ['{"EncryptionAgent":{}}', 'InvalidEncryptionData'],
      ['[]', 'InvalidEncryptionData'],
      ['{', 'InvalidEncryptionData'],
      [
        microsoftVectors().entities[0]!._ClientEncryptionMetadata1.replace(/"ContentEncryptionIV":"[^"]*",/, ''),
        'InvalidEncryptionData',
      ],
    ];
    for (const [json, code] of cases) {
      assert.throws(
        () => parseTableKeyMetadata(json),
        (e) => isCseError(e, code as 'InvalidEncryptionData'),
        json,
      );
    }
  });

  it('re-wraps under a new key keeping protocol, IV and (absent) KeyWrappingMetadata', async () => {
    const newRing = parseJwkSet(generateDevelopmentKeySet('local:new'), 'new');
    const newKek = newRing.get('local:new')!;
    const old = microsoftKek();
    const java = parseTableKeyMetadata(microsoftVectors().entities[1]!._ClientEncryptionMetadata1);
    const before = await unwrapEntityKey(java, recordingResolver(old));
    const rewrapped = await rewrapTableKeyMetadata(java, recordingResolver(old), newKek);
    assert.equal(rewrapped.wrappedContentKey.keyId, 'local:new');
    assert.equal(rewrapped.protocol, '1.0');
    assert.deepEqual(rewrapped.protocol === '1.0' && rewrapped.entityIv, java.protocol === '1.0' && java.entityIv);
    assert.equal(rewrapped.keyWrappingMetadata, undefined);
    assert.equal(usesLegacyJavaLayout(parseTableKeyMetadata(serializeTableKeyMetadata(rewrapped))), true);
    assert.deepEqual(await unwrapEntityKey(rewrapped, newRing), before);
  });
});
