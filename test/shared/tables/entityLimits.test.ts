import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import { generateDevelopmentKeySet, parseJwkSet } from '../../../shared/keys/localKeys';
import { encryptEntity } from '../../../shared/tables/entityEncryption';
import { properties, tv, type EntityRecord, type TableValue } from '../../../shared/tables/entityModel';
import {
  MAX_BINARY_BYTES,
  MAX_ENTITY_BYTES,
  MAX_STRING_CHARS,
  assertEntityWithinLimits,
  estimateEntitySize,
} from '../../../shared/tables/entityLimits';

const kek = parseJwkSet(generateDevelopmentKeySet('local:limits'), 't').get('local:limits')!;

function entity(props: [string, TableValue][]): EntityRecord {
  return { partitionKey: 'pk', rowKey: 'rk', properties: properties(props) };
}

function tooLarge(pattern: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(isCseError(e, 'EntityTooLarge'), String(e));
    assert.match(e.message, pattern);
    return true;
  };
}

describe('entity size limits', () => {
  it('estimates size as the service documents it', () => {
    // 4 + 2*(2+2) + [8 + 2*1 + (4 + 2*3)] + [8 + 2*1 + (4 + 5)] + [8 + 2*1 + 4] + [8 + 2*1 + 16] + [8+2+1]
    const e = entity([
      ['S', tv.string('abc')],
      ['B', tv.binary(Buffer.alloc(5))],
      ['I', tv.int32(1)],
      ['G', tv.guid('c9da6455-213d-42c9-9a79-3e9149a57833')],
      ['T', tv.boolean(true)],
    ]);
    assert.equal(estimateEntitySize(e), 4 + 8 + 20 + 19 + 14 + 26 + 11);
  });

  it('255 properties including PartitionKey, RowKey, Timestamp and the two metadata properties', async () => {
    const props = (n: number): [string, TableValue][] => Array.from({ length: n }, (_, i) => [`p${i}`, tv.int32(i)]);
    await encryptEntity(entity(props(250)), { kek, encryptedProperties: [] });
    await assert.rejects(
      encryptEntity(entity(props(251)), { kek, encryptedProperties: [] }),
      tooLarge(/256 properties.*room for 250/),
    );
    assertEntityWithinLimits(entity(props(252)));
    assert.throws(() => assertEntityWithinLimits(entity(props(253))), tooLarge(/256 properties/));
  });

  it('64 KiB per binary property, counted after encryption', async () => {
    const room = MAX_BINARY_BYTES - 28; // 2.0 adds nonce and tag
    await encryptEntity(entity([['S', tv.string('x'.repeat(room))]]), { kek, encryptedProperties: ['S'] });
    await assert.rejects(
      encryptEntity(entity([['S', tv.string('x'.repeat(room + 1))]]), { kek, encryptedProperties: ['S'] }),
      tooLarge(/S encrypts to 65537 bytes/),
    );
    // Non-ASCII text grows in UTF-8: 30 000 two-byte characters still fit, 30 000 three-byte ones do not.
    await encryptEntity(entity([['S', tv.string('é'.repeat(30000))]]), { kek, encryptedProperties: ['S'] });
    await assert.rejects(
      encryptEntity(entity([['S', tv.string('€'.repeat(30000))]]), { kek, encryptedProperties: ['S'] }),
      tooLarge(/S encrypts to 90028 bytes/),
    );
    assert.throws(
      () => assertEntityWithinLimits(entity([['B', tv.binary(Buffer.alloc(MAX_BINARY_BYTES + 1))]])),
      tooLarge(/Edm.Binary/),
    );
  });

  it('32K UTF-16 characters per string', async () => {
    await encryptEntity(entity([['S', tv.string('x'.repeat(MAX_STRING_CHARS))]]), { kek, encryptedProperties: [] });
    await assert.rejects(
      encryptEntity(entity([['S', tv.string('x'.repeat(MAX_STRING_CHARS + 1))]]), { kek, encryptedProperties: [] }),
      tooLarge(/32769 characters/),
    );
  });

  it('1 MiB per entity as the service counts it', async () => {
    // 18 binary properties of 60 000 bytes: each fits, together they exceed 1 MiB.
    const props: [string, TableValue][] = Array.from({ length: 18 }, (_, i) => [
      `b${i}`,
      tv.binary(Buffer.alloc(60000)),
    ]);
    const e = entity(props);
    assert.ok(estimateEntitySize(e) > MAX_ENTITY_BYTES);
    await assert.rejects(encryptEntity(e, { kek, encryptedProperties: [] }), tooLarge(/1048576 bytes \(1 MiB\)/));
    await encryptEntity(entity(props.slice(0, 17)), { kek, encryptedProperties: [] });
  });
});
