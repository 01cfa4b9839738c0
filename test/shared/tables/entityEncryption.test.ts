import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isCseError } from '../../../shared/errors';
import { generateDevelopmentKeySet, parseJwkSet } from '../../../shared/keys/localKeys';
import { decryptEntity, encryptEntity, type DecryptEntityOptions } from '../../../shared/tables/entityEncryption';
import {
  KEY_METADATA_PROPERTY,
  NAME_LIST_PROPERTY,
  getProperty,
  properties,
  propertyEntries,
  sameValue,
  tv,
  type EntityRecord,
  type TableValue,
} from '../../../shared/tables/entityModel';
import { parseTableKeyMetadata, serializeTableKeyMetadata } from '../../../shared/tables/tableKeyMetadata';
import { tableAad, v1PropertyIv } from '../../../shared/tables/propertyCipher';
import { unwrapContentKey } from '../../../shared/crypto/keyWrapPayload';
import { vectorKeyRing } from '../../helpers/vectors';
import {
  microsoftKek,
  microsoftStoredEntity,
  microsoftVectors,
  plaintextEntity,
  recordingResolver,
  requestBody,
  storedEntity,
  tableVectors,
} from './tableFixtures';

const ring = parseJwkSet(generateDevelopmentKeySet('local:table-test'), 'test');
const kek = ring.get('local:table-test')!;
const otherRing = parseJwkSet(generateDevelopmentKeySet('local:table-test'), 'other'); // same id, other key
const v2Read: DecryptEntityOptions = { resolver: ring, allowV1: false };

function entity(pk: string, rk: string, props: Record<string, TableValue>): EntityRecord {
  return { partitionKey: pk, rowKey: rk, properties: properties(Object.entries(props)) };
}

const sample = entity('tenant-1', 'user-42', {
  Email: tv.string('alice@example.com'),
  Ssn: tv.string('123-45-6789'),
  Note: tv.string('héllo 🚀'),
  Empty: tv.string(''),
  Age: tv.int32(42),
  Plain: tv.string('visible'),
});
const sampleEncrypted = ['Email', 'Ssn', 'Note', 'Empty'];

function binary(e: EntityRecord, name: string): Buffer {
  const v = getProperty(e.properties, name);
  assert.ok(v !== undefined && v.type === 'Binary', `${name} is binary`);
  return v.value;
}

function withProperty(e: EntityRecord, name: string, value: TableValue | undefined): EntityRecord {
  const entries = propertyEntries(e.properties).filter(([n]) => n !== name);
  if (value !== undefined) entries.push([name, value]);
  return { ...e, properties: properties(entries) };
}

async function rejects(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isCseError(e), `expected a CseError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern !== undefined) assert.match(e.message, pattern);
    return true;
  });
}

describe('legacy 1.0: Python azure-cosmosdb-table vectors', () => {
  const keys = vectorKeyRing();
  for (const v of tableVectors()) {
    it(`${v.id} decrypts to the plaintext and drops the metadata`, async () => {
      const out = await decryptEntity(storedEntity(v), { resolver: keys, allowV1: true });
      const expected = plaintextEntity(v);
      assert.deepEqual(Object.keys(out.properties), Object.keys(expected.properties));
      for (const [name, value] of propertyEntries(expected.properties)) {
        assert.ok(sameValue(out.properties[name]!, value), `${name}: ${JSON.stringify(out.properties[name])}`);
      }
      assert.deepEqual(out.encryption, {
        protocol: '1.0',
        keyId: v.kid,
        encryptedProperties: JSON.parse(v.metadata2_plaintext),
        legacyJavaLayout: false,
      });
    });

    it(`${v.id} encrypts bit-exactly with the vector's CEK and IV`, async () => {
      const kekForVector = keys.get(v.kid)!;
      const out = await encryptEntity(plaintextEntity(v), {
        kek: kekForVector,
        protocol: '1.0',
        encryptedProperties: v.encrypted_properties,
        cek: Buffer.from(v.cek_hex, 'hex'),
        entityIv: Buffer.from(v.entity_iv_hex, 'hex'),
      });
      const body = requestBody(v);
      // Same property names in the same order as the SDK's request body.
      assert.deepEqual(
        Object.keys(out.properties),
        Object.keys(body).filter((k) => !k.includes('@') && k !== 'PartitionKey' && k !== 'RowKey'),
      );
      for (const name of [...v.encrypted_properties, NAME_LIST_PROPERTY]) {
        assert.equal(binary(out, name).toString('base64'), body[name], `${name} ciphertext`);
      }
      // Unencrypted properties pass through untouched.
      assert.deepEqual(getProperty(out.properties, 'Plain'), getProperty(plaintextEntity(v).properties, 'Plain'));

      const ours = JSON.parse((getProperty(out.properties, KEY_METADATA_PROPERTY) as { value: string }).value);
      const theirs = JSON.parse(body[KEY_METADATA_PROPERTY] as string);
      assert.deepEqual(ours.EncryptionAgent, theirs.EncryptionAgent);
      assert.equal(ours.ContentEncryptionIV, theirs.ContentEncryptionIV);
      assert.equal(ours.WrappedContentKey.KeyId, theirs.WrappedContentKey.KeyId);
      assert.equal(ours.WrappedContentKey.Algorithm, theirs.WrappedContentKey.Algorithm);
      assert.equal(typeof ours.KeyWrappingMetadata.EncryptionLibrary, 'string');
      if (theirs.WrappedContentKey.Algorithm === 'A256KW') {
        assert.equal(ours.WrappedContentKey.EncryptedKey, theirs.WrappedContentKey.EncryptedKey);
      } else {
        // RSA-OAEP is randomized: the wrapped key differs but must unwrap to the vector's CEK.
        const cek = await unwrapContentKey(keys, parseTableKeyMetadata(JSON.stringify(ours)).wrappedContentKey, '1.0');
        assert.equal(cek.toString('hex'), v.cek_hex);
      }
    });

    it(`${v.id} is refused without allowV1, before any key is resolved`, async () => {
      const resolver = recordingResolver(keys.get(v.kid)!);
      await rejects(
        decryptEntity(storedEntity(v), { resolver, allowV1: false }),
        'LegacyFormatDisabled',
        /CSE_ALLOW_V1/,
      );
      assert.deepEqual(resolver.asked, []);
    });
  }

  it('derives the per-property IVs listed in the manifest (RowKey + PartitionKey + name)', () => {
    for (const v of tableVectors()) {
      for (const [name, hex] of Object.entries(v.property_ivs_hex)) {
        const at = { partitionKey: v.partition_key, rowKey: v.row_key, name };
        assert.equal(
          v1PropertyIv(Buffer.from(v.entity_iv_hex, 'hex'), at, false).toString('hex'),
          hex,
          `${v.id} ${name}`,
        );
      }
    }
  });
});

describe("legacy 1.0: Microsoft's .NET and Java cross-SDK entities (FORMAT.md §6.7)", () => {
  const ms = microsoftVectors();
  const resolver = recordingResolver(microsoftKek());

  for (const e of ms.entities) {
    it(`${e.RowKey} (${e.writer.split(' (')[0]}) decrypts every property to "${ms.plaintext}"`, async () => {
      const out = await decryptEntity(microsoftStoredEntity(e), { resolver, allowV1: true });
      assert.deepEqual(Object.keys(out.properties), ['sampleProp', 'sampleProp2', 'sampleProp3']);
      for (const v of Object.values(out.properties)) assert.deepEqual(v, tv.string(ms.plaintext));
      assert.equal(out.encryption?.legacyJavaLayout, e.RowKey === 'javaUp');
    });
  }

  it('re-encrypting the .NET entity with its CEK and IV reproduces its property ciphertext', async () => {
    const e = ms.entities.find((x) => x.RowKey === 'netUp')!;
    const meta = parseTableKeyMetadata(e._ClientEncryptionMetadata1);
    assert.equal(meta.protocol, '1.0');
    const cek = await unwrapContentKey(resolver, meta.wrappedContentKey, '1.0');
    const plain = entity(e.PartitionKey, e.RowKey, {
      sampleProp: tv.string(ms.plaintext),
      sampleProp2: tv.string(ms.plaintext),
      sampleProp3: tv.string(ms.plaintext),
    });
    const out = await encryptEntity(plain, {
      kek: microsoftKek(),
      protocol: '1.0',
      encryptedProperties: ['sampleProp', 'sampleProp2', 'sampleProp3'],
      cek,
      entityIv: meta.protocol === '1.0' ? meta.entityIv : undefined,
    });
    for (const name of ['sampleProp', 'sampleProp2', 'sampleProp3']) {
      assert.equal(binary(out, name).toString('base64'), e.binary[name], name);
    }
    // .NET wrote a compact list and we write Python's spacing, so metadata2 differs; both decrypt to the names.
    const back = await decryptEntity(out, { resolver, allowV1: true });
    assert.deepEqual(back.encryption?.encryptedProperties, ['sampleProp', 'sampleProp2', 'sampleProp3']);
  });

  it('the IV order matters: reading the .NET entity as a Java one fails with a typed error', async () => {
    const e = ms.entities.find((x) => x.RowKey === 'netUp')!;
    const javaLabelled = e._ClientEncryptionMetadata1.replace(
      '"KeyWrappingMetadata":{}',
      '"KeyWrappingMetadata":{"EncryptionLibrary":"Java 4.0"}',
    );
    const stored = withProperty(microsoftStoredEntity(e), KEY_METADATA_PROPERTY, tv.string(javaLabelled));
    await rejects(decryptEntity(stored, { resolver, allowV1: true }), 'IntegrityCheckFailed');
  });

  it('our 1.0 writer never produces the Java layout: KeyWrappingMetadata is present and not "Java"', async () => {
    const out = await encryptEntity(sample, { kek, protocol: '1.0', encryptedProperties: sampleEncrypted });
    const meta = JSON.parse((getProperty(out.properties, KEY_METADATA_PROPERTY) as { value: string }).value);
    assert.equal(typeof meta.KeyWrappingMetadata, 'object');
    assert.doesNotMatch(meta.KeyWrappingMetadata.EncryptionLibrary, /Java/);
    await rejects(
      encryptEntity(sample, { kek, protocol: '1.0', encryptedProperties: [], encryptionLibrary: 'Java-ish' }),
      'ConfigurationError',
    );
  });
});

describe('protocol 2.0', () => {
  it('is the default: metadata says 2.0 / AES_GCM_256, the key is wrapped with the "2.0" prefix', async () => {
    const out = await encryptEntity(sample, { kek, encryptedProperties: sampleEncrypted });
    const raw = JSON.parse((getProperty(out.properties, KEY_METADATA_PROPERTY) as { value: string }).value);
    assert.deepEqual(raw.EncryptionAgent, { Protocol: '2.0', EncryptionAlgorithm: 'AES_GCM_256' });
    assert.equal(raw.ContentEncryptionIV, undefined);
    assert.equal(raw.KeyWrappingMetadata.EncryptionLibrary, 'azure-cse-functions');
    const meta = parseTableKeyMetadata(raw === null ? '' : JSON.stringify(raw));
    assert.equal((await unwrapContentKey(ring, meta.wrappedContentKey, '2.0')).length, 32);
    // The same wrapped key read as 1.0 is refused (the prefix binds the protocol).
    await rejects(unwrapContentKey(ring, meta.wrappedContentKey, '1.0'), 'IntegrityCheckFailed');
  });

  it('stores each encrypted value as nonce(12) ‖ ciphertext ‖ tag(16) with a fresh nonce', async () => {
    const a = await encryptEntity(sample, { kek, encryptedProperties: sampleEncrypted });
    const b = await encryptEntity(sample, { kek, encryptedProperties: sampleEncrypted });
    for (const name of sampleEncrypted) {
      const plain = (getProperty(sample.properties, name) as { value: string }).value;
      assert.equal(binary(a, name).length, 12 + Buffer.byteLength(plain, 'utf8') + 16);
      assert.notDeepEqual(binary(a, name).subarray(0, 12), binary(b, name).subarray(0, 12));
    }
    // Property order: the caller's, then the name list, then the key metadata (as the legacy writers do).
    assert.deepEqual(Object.keys(a.properties), [
      ...Object.keys(sample.properties),
      NAME_LIST_PROPERTY,
      KEY_METADATA_PROPERTY,
    ]);
  });

  it('round-trips every value type, encrypted strings included', async () => {
    const all = entity('p', 'r', {
      S: tv.string('secret'),
      B: tv.binary(Buffer.from([0, 1, 2, 255])),
      T: tv.boolean(true),
      I: tv.int32(-7),
      L: tv.int64('-9223372036854775808'),
      D: tv.double(NaN),
      Dt: tv.dateTime('2024-05-01T12:00:00.1234567Z'),
      G: tv.guid('c9da6455-213d-42c9-9a79-3e9149a57833'),
      P: tv.string('plain'),
    });
    const out = await decryptEntity(await encryptEntity(all, { kek, encryptedProperties: ['S'] }), v2Read);
    assert.deepEqual(Object.keys(out.properties), Object.keys(all.properties));
    for (const [name, value] of propertyEntries(all.properties))
      assert.ok(sameValue(out.properties[name]!, value), name);
    assert.deepEqual(out.encryption, {
      protocol: '2.0',
      keyId: kek.keyId,
      encryptedProperties: ['S'],
      legacyJavaLayout: false,
    });
  });

  it('round-trips arbitrary entities (property test)', async () => {
    const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/).filter((n) => !n.startsWith('_ClientEncryption'));
    // Keys as the service allows them: no / \\ # ? or control characters.
    // eslint-disable-next-line no-control-regex
    const forbidden = /[/\\#?\u0000-\u001f\u007f-\u009f]/;
    const key = fc.string({ unit: 'grapheme', maxLength: 20 }).filter((k) => !forbidden.test(k));
    await fc.assert(
      fc.asyncProperty(
        key,
        key,
        fc.uniqueArray(fc.tuple(name, fc.string({ unit: 'grapheme', maxLength: 40 }), fc.boolean()), {
          selector: (t) => t[0],
          maxLength: 8,
        }),
        fc.constantFrom<'1.0' | '2.0'>('1.0', '2.0'),
        async (pk, rk, props, protocol) => {
          const plain = entity(pk, rk, Object.fromEntries(props.map(([n, v]) => [n, tv.string(v)])));
          const encrypt = props.filter((p) => p[2]).map((p) => p[0]);
          const stored = await encryptEntity(plain, { kek, protocol, encryptedProperties: encrypt });
          const back = await decryptEntity(stored, { resolver: ring, allowV1: true });
          assert.deepEqual(back.properties, plain.properties);
          assert.deepEqual(
            back.encryption?.encryptedProperties,
            props.map((p) => p[0]).filter((n) => encrypt.includes(n)),
          );
          for (const n of encrypt) assert.equal(getProperty(stored.properties, n)?.type, 'Binary');
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('protocol 2.0: tampering never yields plaintext', () => {
  let stored: EntityRecord;
  const fresh = async (): Promise<EntityRecord> =>
    (stored ??= await encryptEntity(sample, { kek, encryptedProperties: sampleEncrypted }));

  it('a flipped bit anywhere in a value (nonce, ciphertext, tag) fails authentication', async () => {
    const s = await fresh();
    for (const name of ['Email', 'Empty']) {
      const original = binary(s, name);
      for (let i = 0; i < original.length; i++) {
        const bad = Buffer.from(original);
        bad[i]! ^= 0x01;
        await rejects(
          decryptEntity(withProperty(s, name, tv.binary(bad)), v2Read),
          'IntegrityCheckFailed',
          new RegExp(name),
        );
      }
    }
  });

  it('a flipped bit in the encrypted name list fails authentication', async () => {
    const s = await fresh();
    const list = binary(s, NAME_LIST_PROPERTY);
    for (const i of [0, 11, 12, list.length - 17, list.length - 1]) {
      const bad = Buffer.from(list);
      bad[i]! ^= 0x80;
      await rejects(decryptEntity(withProperty(s, NAME_LIST_PROPERTY, tv.binary(bad)), v2Read), 'IntegrityCheckFailed');
    }
  });

  it('truncated values fail', async () => {
    const s = await fresh();
    for (const cut of [1, 16, 27, 28, 40]) {
      const v = binary(s, 'Email');
      await rejects(
        decryptEntity(withProperty(s, 'Email', tv.binary(v.subarray(0, Math.max(0, v.length - cut)))), v2Read),
        'IntegrityCheckFailed',
      );
    }
  });

  it('a value moved to another property of the same entity fails', async () => {
    const s = await fresh();
    const email = binary(s, 'Email');
    await rejects(decryptEntity(withProperty(s, 'Ssn', tv.binary(email)), v2Read), 'IntegrityCheckFailed', /Ssn/);
  });

  it('a value moved to another row or partition fails (same key material, different location)', async () => {
    const s = await fresh();
    for (const moved of [
      { ...s, rowKey: 'user-43' },
      { ...s, partitionKey: 'tenant-2' },
      // Swapping key boundaries: RK+PK concatenation is the same, the length-prefixed encoding is not.
      { ...s, partitionKey: 'tenant-1u', rowKey: 'ser-42' },
    ]) {
      await rejects(decryptEntity(moved, v2Read), 'IntegrityCheckFailed');
    }
  });

  it("a value copied from another entity (with that entity's metadata or not) fails", async () => {
    const s = await fresh();
    const other = await encryptEntity({ ...sample, rowKey: 'user-43' }, { kek, encryptedProperties: sampleEncrypted });
    await rejects(
      decryptEntity(withProperty(s, 'Email', getProperty(other.properties, 'Email')), v2Read),
      'IntegrityCheckFailed',
    );
    // The other entity's key and list, under this entity's keys.
    const mixed = withProperty(
      withProperty(s, KEY_METADATA_PROPERTY, getProperty(other.properties, KEY_METADATA_PROPERTY)),
      NAME_LIST_PROPERTY,
      getProperty(other.properties, NAME_LIST_PROPERTY),
    );
    await rejects(decryptEntity(mixed, v2Read), 'IntegrityCheckFailed');
  });

  it('a whole entity copied elsewhere with the same keys still decrypts (e.g. another table)', async () => {
    const s = await fresh();
    const copy: EntityRecord = JSON.parse(JSON.stringify({ ...s, properties: {} }));
    const back = await decryptEntity({ ...copy, properties: s.properties }, v2Read);
    assert.deepEqual(back.properties, sample.properties);
  });

  it('a removed encrypted property is detected; with a $select that omits it, it may be absent', async () => {
    const s = await fresh();
    await rejects(decryptEntity(withProperty(s, 'Ssn', undefined), v2Read), 'IntegrityCheckFailed', /Ssn.*missing/);
    const partial = await decryptEntity(withProperty(s, 'Ssn', undefined), { ...v2Read, selected: ['Email'] });
    assert.deepEqual(partial.properties['Email'], tv.string('alice@example.com'));
    await rejects(
      decryptEntity(withProperty(s, 'Ssn', undefined), { ...v2Read, selected: ['Ssn'] }),
      'IntegrityCheckFailed',
    );
  });

  it('an encrypted property replaced by plaintext is detected', async () => {
    const s = await fresh();
    await rejects(decryptEntity(withProperty(s, 'Ssn', tv.string('000-00-0000')), v2Read), 'IntegrityCheckFailed');
    await rejects(decryptEntity(withProperty(s, 'Ssn', tv.int32(1)), v2Read), 'IntegrityCheckFailed', /Edm.Int32/);
  });

  it('a wrong key under the same key id fails', async () => {
    await rejects(decryptEntity(await fresh(), { resolver: otherRing, allowV1: false }), 'IntegrityCheckFailed');
  });

  it('relabelling the metadata as 1.0 (a downgrade) fails', async () => {
    const s = await fresh();
    const meta = parseTableKeyMetadata((getProperty(s.properties, KEY_METADATA_PROPERTY) as { value: string }).value);
    const downgraded = serializeTableKeyMetadata({ ...meta, protocol: '1.0', entityIv: Buffer.alloc(16) });
    const d = withProperty(s, KEY_METADATA_PROPERTY, tv.string(downgraded));
    await rejects(decryptEntity(d, v2Read), 'LegacyFormatDisabled');
    await rejects(decryptEntity(d, { ...v2Read, allowV1: true }), 'IntegrityCheckFailed', /wrong length/);
  });

  it('half of the metadata, or none, is reported', async () => {
    const s = await fresh();
    await rejects(decryptEntity(withProperty(s, NAME_LIST_PROPERTY, undefined), v2Read), 'InvalidEncryptionData');
    await rejects(decryptEntity(withProperty(s, KEY_METADATA_PROPERTY, undefined), v2Read), 'InvalidEncryptionData');
    await rejects(decryptEntity(sample, v2Read), 'NotEncrypted');
    assert.equal((await decryptEntity(sample, { ...v2Read, allowPlaintext: true })).encryption, undefined);
  });

  it('the associated data is an injective length-prefixed encoding', () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.string(), fc.string(), fc.string()),
        fc.tuple(fc.string(), fc.string(), fc.string()),
        (a, b) => {
          const [pa, ra, na] = a;
          const [pb, rb, nb] = b;
          const same = pa === pb && ra === rb && na === nb;
          const ea = tableAad({ partitionKey: pa, rowKey: ra, name: na });
          const eb = tableAad({ partitionKey: pb, rowKey: rb, name: nb });
          return same === ea.equals(eb) || !isWellFormed(a.join('') + b.join(''));
        },
      ),
    );
    assert.equal(
      tableAad({ partitionKey: 'p', rowKey: 'é', name: 'N' }).toString('hex'),
      '0000001d' +
        Buffer.from('azure-cse-functions/table/2.0').toString('hex') +
        '00000001' +
        '70' +
        '00000002' +
        'c3a9' +
        '00000001' +
        '4e',
    );
  });
});

function isWellFormed(s: string): boolean {
  return Buffer.from(s, 'utf8').toString('utf8') === s;
}

describe('what may be encrypted', () => {
  it('only String properties: others are refused with PropertyNotEncryptable', async () => {
    await rejects(
      encryptEntity(sample, { kek, encryptedProperties: ['Age'] }),
      'PropertyNotEncryptable',
      /Age is Edm.Int32/,
    );
  });

  it('a named property must exist; keys and metadata cannot be encrypted', async () => {
    await rejects(
      encryptEntity(sample, { kek, encryptedProperties: ['Missing'] }),
      'PropertyNotEncryptable',
      /no such property/,
    );
    for (const n of ['PartitionKey', 'RowKey', 'Timestamp', KEY_METADATA_PROPERTY]) {
      await rejects(encryptEntity(sample, { kek, encryptedProperties: [n] }), 'PropertyNotEncryptable');
    }
  });

  it('the reserved metadata names and system names cannot be user properties', async () => {
    for (const n of [KEY_METADATA_PROPERTY, NAME_LIST_PROPERTY]) {
      await rejects(
        encryptEntity(withProperty(sample, n, tv.string('x')), { kek, encryptedProperties: [] }),
        'ReservedMetadata',
      );
    }
    await rejects(
      encryptEntity(withProperty(sample, 'RowKey', tv.string('x')), { kek, encryptedProperties: [] }),
      'InvalidName',
    );
    await rejects(
      encryptEntity(withProperty(sample, 'bad-name', tv.string('x')), { kek, encryptedProperties: [] }),
      'InvalidName',
    );
  });

  it('bad keys and values are refused before any key is used', async () => {
    await rejects(encryptEntity({ ...sample, rowKey: 'a/b' }, { kek, encryptedProperties: [] }), 'InvalidName');
    await rejects(
      encryptEntity({ ...sample, partitionKey: '\ud800' }, { kek, encryptedProperties: [] }),
      'InvalidName',
    );
    await rejects(
      encryptEntity(withProperty(sample, 'N', tv.int32(2 ** 31)), { kek, encryptedProperties: [] }),
      'InvalidEntity',
    );
    await rejects(
      encryptEntity(withProperty(sample, 'N', tv.int64('12x')), { kek, encryptedProperties: [] }),
      'InvalidEntity',
    );
  });

  it('an empty list still writes metadata, so stripping it is detectable', async () => {
    const out = await encryptEntity(sample, { kek, encryptedProperties: [] });
    assert.ok(getProperty(out.properties, KEY_METADATA_PROPERTY));
    const back = await decryptEntity(out, v2Read);
    assert.deepEqual(back.properties, sample.properties);
    assert.deepEqual(back.encryption?.encryptedProperties, []);
  });
});
