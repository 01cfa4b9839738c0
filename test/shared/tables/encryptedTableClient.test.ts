/**
 * EncryptedTableClient against a real Azurite table service (started on free ports for this file).
 * A plain TableClient on the same table shows what is really stored.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TableClient } from '@azure/data-tables';
import { isCseError } from '../../../shared/errors';
import { generateDevelopmentKeySet, parseJwkSet } from '../../../shared/keys/localKeys';
import { EncryptedTableClient, type EncryptedTableClientOptions } from '../../../shared/tables/encryptedTableClient';
import { properties, tv, type EntityRecord, type TableValue } from '../../../shared/tables/entityModel';
import { rewrapTableKeyMetadata } from '../../../shared/tables/tableKeyMetadata';
import { startAzurite, tableClientOptions, type RunningAzurite } from '../../helpers/azurite';
import { recordingResolver } from './tableFixtures';

const ring = parseJwkSet(generateDevelopmentKeySet('local:tables-it'), 'test');
const kek = ring.get('local:tables-it')!;
const keys = { kek, resolver: ring };

let azurite: RunningAzurite;
let tableCounter = 0;

function entity(pk: string, rk: string, props: Record<string, TableValue>): EntityRecord {
  return { partitionKey: pk, rowKey: rk, properties: properties(Object.entries(props)) };
}

const person = (rk: string, email = `${rk}@example.com`): EntityRecord =>
  entity('people', rk, {
    Email: tv.string(email),
    Ssn: tv.string('123-45-6789'),
    Age: tv.int32(40),
    City: tv.string('Oslo'),
  });

async function freshTable(
  options: EncryptedTableClientOptions = { encryptedProperties: ['Email', 'Ssn'] },
): Promise<{ enc: EncryptedTableClient; raw: TableClient }> {
  const name = `tables${process.pid}x${++tableCounter}`;
  const raw = TableClient.fromConnectionString(azurite.connectionString, name, tableClientOptions);
  const enc = new EncryptedTableClient(raw, keys, options);
  await enc.createTableIfMissing();
  return { enc, raw };
}

async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isCseError(e), `expected a CseError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern !== undefined) assert.match(e.message, pattern);
    return true;
  });
}

async function rawEntity(raw: TableClient, pk: string, rk: string): Promise<Record<string, unknown>> {
  return (await raw.getEntity(pk, rk)) as Record<string, unknown>;
}

before(async () => {
  azurite = await startAzurite();
});
after(async () => {
  await azurite?.stop();
});

describe('EncryptedTableClient on Azurite', () => {
  it('upsert stores ciphertext with 2.0 metadata, and get decrypts it', async () => {
    const { enc, raw } = await freshTable();
    const { etag } = await enc.upsert(person('alice'));
    const stored = await rawEntity(raw, 'people', 'alice');
    assert.ok(stored['Email'] instanceof Uint8Array, 'Email is stored as Edm.Binary');
    assert.ok(!Buffer.from(stored['Email'] as Uint8Array).includes('alice'), 'no plaintext stored');
    assert.equal(stored['City'], 'Oslo', 'unlisted properties stay clear');
    assert.equal(JSON.parse(stored['_ClientEncryptionMetadata1'] as string).EncryptionAgent.Protocol, '2.0');

    const got = await enc.get('people', 'alice');
    assert.equal(got.etag, etag);
    assert.deepEqual(got.properties, person('alice').properties);
    assert.equal(got.encryption?.protocol, '2.0');
    assert.deepEqual(got.encryption?.encryptedProperties, ['Email', 'Ssn']);
    assert.match(got.timestamp ?? '', /^\d{4}-\d{2}-\d{2}T/);
  });

  it('every EDM type survives the service round trip', async () => {
    const { enc } = await freshTable();
    const all = entity('types', '1', {
      Email: tv.string('x@y.z'),
      Bin: tv.binary(Buffer.from([0, 255, 1])),
      Flag: tv.boolean(false),
      Small: tv.int32(-5),
      Big: tv.int64('9007199254740993'),
      Ratio: tv.double(2),
      Frac: tv.double(0.25),
      When: tv.dateTime('2024-05-01T12:00:00.1234567Z'),
      Id: tv.guid('c9da6455-213d-42c9-9a79-3e9149a57833'),
    });
    await enc.upsert(all);
    assert.deepEqual((await enc.get('types', '1')).properties, all.properties);
  });

  it('insert refuses an existing entity (EntityExists); replace honours If-Match', async () => {
    const { enc } = await freshTable();
    const first = await enc.insert(person('bob'));
    await rejectsWith(enc.insert(person('bob')), 'EntityExists');

    const second = await enc.replace(person('bob', 'new@example.com'), first.etag);
    await rejectsWith(enc.replace(person('bob', 'stale@example.com'), first.etag), 'ConditionNotMet');
    assert.equal((await enc.get('people', 'bob')).properties['Email']?.value, 'new@example.com');
    await enc.replace(person('bob', 'any@example.com'), '*');
    assert.notEqual(second.etag, (await enc.get('people', 'bob')).etag);
    await rejectsWith(enc.replace(person('nobody'), '*'), 'EntityNotFound');
  });

  it('get and delete report EntityNotFound; delete honours If-Match', async () => {
    const { enc } = await freshTable();
    await rejectsWith(enc.get('people', 'ghost'), 'EntityNotFound');
    const { etag } = await enc.upsert(person('carol'));
    await enc.upsert(person('carol', 'changed@example.com'));
    await rejectsWith(enc.delete('people', 'carol', { etag }), 'ConditionNotMet');
    await enc.delete('people', 'carol');
    await rejectsWith(enc.get('people', 'carol'), 'EntityNotFound');
    await rejectsWith(enc.delete('people', 'carol'), 'EntityNotFound');
    const missingTable = new EncryptedTableClient(
      TableClient.fromConnectionString(azurite.connectionString, 'nosuchtable', tableClientOptions),
      keys,
    );
    await rejectsWith(missingTable.get('p', 'r'), 'EntityNotFound', /table does not exist/);
  });

  it('lists a partition one page at a time, decrypted, with continuation tokens (non-ASCII keys too)', async () => {
    const { enc } = await freshTable();
    const pk = 'pk é 🚀';
    const rks = ['a', 'b', 'c', 'd', 'é'];
    for (const rk of rks) await enc.upsert(entity(pk, rk, { Email: tv.string(`${rk}@x`), N: tv.int32(1) }));
    await enc.upsert(entity('other', 'z', { Email: tv.string('z@x') }));

    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await enc.listPartition(pk, { pageSize: 2, continuationToken: token });
      pages++;
      assert.ok(page.entities.length <= 2);
      for (const e of page.entities) {
        assert.equal(e.partitionKey, pk);
        assert.equal(e.properties['Email']?.value, `${e.rowKey}@x`);
        seen.push(e.rowKey);
      }
      token = page.continuationToken;
    } while (token !== undefined && pages < 10);
    assert.deepEqual(seen, rks);
    assert.equal(pages, 3);
    await rejectsWith(enc.listPartition(pk, { continuationToken: 'garbage!' }), 'InvalidContinuationToken');
  });

  it('$select fetches the metadata too and decrypts only what was selected', async () => {
    const { enc } = await freshTable();
    await enc.upsert(person('dave'));
    const got = await enc.get('people', 'dave', { select: ['Email', 'Age'] });
    assert.deepEqual(got.properties, { Email: tv.string('dave@example.com'), Age: tv.int32(40) });
    const page = await enc.listPartition('people', { select: ['City'] });
    assert.deepEqual(page.entities[0]?.properties, { City: tv.string('Oslo') });
  });

  it('a filter on an encrypted property is refused; other filters work', async () => {
    const { enc } = await freshTable();
    await enc.upsert(person('erin'));
    await enc.upsert({ ...person('frank'), properties: { ...person('frank').properties, Age: tv.int32(20) } });
    await rejectsWith(enc.query({ filter: "Email eq 'erin@example.com'" }), 'EncryptedPropertyFilter', /Email/);
    await rejectsWith(enc.query({ filter: "Notes eq 'x'", encryptedProperties: ['Notes'] }), 'EncryptedPropertyFilter');
    const page = await enc.query({ filter: "PartitionKey eq 'people' and Age gt 30" });
    assert.deepEqual(
      page.entities.map((e) => [e.rowKey, e.properties['Email']?.value]),
      [['erin', 'erin@example.com']],
    );
  });

  it('Merge and InsertOrMerge are refused', async () => {
    const { enc } = await freshTable();
    assert.throws(
      () => enc.merge(),
      (e) => isCseError(e, 'UnsupportedOperation') && /Replace/.test(e.message),
    );
    assert.throws(
      () => enc.upsertMerge(),
      (e) => isCseError(e, 'UnsupportedOperation'),
    );
  });

  it('transactions encrypt each entity with its own key; a failing one changes nothing', async () => {
    const { enc, raw } = await freshTable();
    const { etag } = await enc.upsert(person('t3'));
    await enc.upsert(person('t4'));
    const r = await enc.submitTransaction([
      { kind: 'insert', entity: person('t1') },
      { kind: 'upsert', entity: person('t2') },
      { kind: 'replace', entity: person('t3', 't3-new@example.com'), etag },
      { kind: 'delete', partitionKey: 'people', rowKey: 't4' },
    ]);
    assert.equal(r.status, 202);
    const page = await enc.listPartition('people');
    assert.deepEqual(
      page.entities.map((e) => [e.rowKey, e.properties['Email']?.value]),
      [
        ['t1', 't1@example.com'],
        ['t2', 't2@example.com'],
        ['t3', 't3-new@example.com'],
      ],
    );
    const wrapped = await Promise.all(
      ['t1', 't2', 't3'].map(async (rk) =>
        JSON.parse((await rawEntity(raw, 'people', rk))['_ClientEncryptionMetadata1'] as string),
      ),
    );
    assert.equal(new Set(wrapped.map((m) => m.WrappedContentKey.EncryptedKey)).size, 3);
    assert.ok(wrapped.every((m) => m.EncryptionAgent.Protocol === '2.0'));

    // Stale ETag: the whole transaction fails and is rolled back.
    await rejectsWith(
      enc.submitTransaction([
        { kind: 'insert', entity: person('t5') },
        { kind: 'replace', entity: person('t3'), etag },
      ]),
      'ConditionNotMet',
    );
    await rejectsWith(enc.get('people', 't5'), 'EntityNotFound');

    const untyped = [{ kind: 'merge', entity: person('t1') }] as unknown as Parameters<typeof enc.submitTransaction>[0];
    await rejectsWith(enc.submitTransaction(untyped), 'UnsupportedOperation', /Merge/);
    await rejectsWith(
      enc.submitTransaction([
        { kind: 'insert', entity: person('x') },
        { kind: 'insert', entity: { ...person('y'), partitionKey: 'p2' } },
      ]),
      'InvalidEntity',
      /same partition/,
    );
  });

  it('writes 1.0 only when configured (and readable by allowV1 only); 2.0 clients refuse 1.0 entities', async () => {
    assert.throws(
      () => new EncryptedTableClient({} as TableClient, keys, { protocol: '1.0' }),
      (e) => isCseError(e, 'ConfigurationError') && /CSE_ALLOW_V1/.test(e.message),
    );
    const { enc: legacy, raw } = await freshTable({ protocol: '1.0', allowV1: true, encryptedProperties: ['Email'] });
    await legacy.upsert(person('gus'));
    const meta = JSON.parse((await rawEntity(raw, 'people', 'gus'))['_ClientEncryptionMetadata1'] as string);
    assert.deepEqual(meta.EncryptionAgent, { Protocol: '1.0', EncryptionAlgorithm: 'AES_CBC_256' });
    assert.equal(typeof meta.KeyWrappingMetadata.EncryptionLibrary, 'string');
    assert.equal((await legacy.get('people', 'gus')).properties['Email']?.value, 'gus@example.com');

    const modern = new EncryptedTableClient(raw, keys, { encryptedProperties: ['Email'] });
    await rejectsWith(modern.get('people', 'gus'), 'LegacyFormatDisabled');
    // Rewriting it through a default client produces 2.0.
    await modern.upsert(person('gus'));
    const after = JSON.parse((await rawEntity(raw, 'people', 'gus'))['_ClientEncryptionMetadata1'] as string);
    assert.equal(after.EncryptionAgent.Protocol, '2.0');
  });

  it('per-write encrypt lists must name String properties of the entity', async () => {
    const { enc, raw } = await freshTable();
    await rejectsWith(enc.upsert(person('h'), { encrypt: ['Age'] }), 'PropertyNotEncryptable');
    await rejectsWith(enc.upsert(person('h'), { encrypt: ['Typo'] }), 'PropertyNotEncryptable');
    await enc.upsert(person('h'), { encrypt: ['City'] });
    const stored = await rawEntity(raw, 'people', 'h');
    assert.ok(stored['City'] instanceof Uint8Array);
    assert.equal(typeof stored['Email'], 'string', 'the per-write list replaces the configured one');
    // The configured list skips names an entity lacks.
    await enc.upsert(entity('people', 'i', { Email: tv.string('i@x') }));
  });

  it('size limits are checked before anything is sent', async () => {
    const { enc } = await freshTable();
    const big = entity('people', 'huge', { Email: tv.string('€'.repeat(30000)) });
    await rejectsWith(enc.upsert(big), 'EntityTooLarge', /Email encrypts to/);
    await rejectsWith(enc.get('people', 'huge'), 'EntityNotFound');
  });

  it('entities without encryption metadata: NotEncrypted, or returned as is when plaintext reads are allowed', async () => {
    const { enc, raw } = await freshTable();
    await raw.createEntity({ partitionKey: 'people', rowKey: 'plain', City: 'Rome' });
    await rejectsWith(enc.get('people', 'plain'), 'NotEncrypted');
    const lenient = new EncryptedTableClient(raw, keys, { allowPlaintextReads: true });
    const got = await lenient.get('people', 'plain');
    assert.equal(got.encryption, undefined);
    assert.deepEqual(got.properties, { City: tv.string('Rome') });
  });

  it('a whole entity copied to another table still decrypts; copied to another row it does not', async () => {
    const { enc, raw } = await freshTable();
    const { enc: enc2, raw: raw2 } = await freshTable();
    await enc.upsert(person('ivy'));
    const stored = await raw.getEntity('people', 'ivy');
    const { etag: _etag, timestamp: _ts, ...copy } = stored as Record<string, unknown>;
    await raw2.createEntity(copy as { partitionKey: string; rowKey: string });
    assert.equal((await enc2.get('people', 'ivy')).properties['Email']?.value, 'ivy@example.com');
    await raw2.createEntity({ ...(copy as { partitionKey: string; rowKey: string }), rowKey: 'ivy2' });
    await rejectsWith(enc2.get('people', 'ivy2'), 'IntegrityCheckFailed');
  });

  it('key rotation touches only _ClientEncryptionMetadata1, under If-Match', async () => {
    const { enc, raw } = await freshTable();
    await enc.upsert(person('jo'));
    const before = await rawEntity(raw, 'people', 'jo');

    const record = await enc.readEntityKeyMetadata('people', 'jo');
    assert.equal(record.metadata.wrappedContentKey.keyId, kek.keyId);
    const newRing = parseJwkSet(generateDevelopmentKeySet('local:tables-it-2'), 'new');
    const newKek = newRing.get('local:tables-it-2')!;
    const rewrapped = await rewrapTableKeyMetadata(record.metadata, ring, newKek);

    await rejectsWith(enc.writeEntityKeyMetadata('people', 'jo', rewrapped, '*'), 'UnsupportedOperation');
    const { etag } = await enc.writeEntityKeyMetadata('people', 'jo', rewrapped, record.etag);
    await rejectsWith(enc.writeEntityKeyMetadata('people', 'jo', rewrapped, record.etag), 'ConditionNotMet');

    const after = await rawEntity(raw, 'people', 'jo');
    for (const name of ['Email', 'Ssn', '_ClientEncryptionMetadata2']) {
      assert.deepEqual(after[name], before[name], `${name} unchanged`);
    }
    assert.notEqual(after['_ClientEncryptionMetadata1'], before['_ClientEncryptionMetadata1']);

    // Readable with the new key only.
    const resolver = recordingResolver(kek, newKek);
    const rotated = new EncryptedTableClient(raw, { kek: newKek, resolver });
    const got = await rotated.get('people', 'jo');
    assert.equal(got.etag, etag);
    assert.deepEqual(got.properties, person('jo').properties);
    assert.deepEqual(resolver.asked, ['local:tables-it-2']);

    await enc.upsert(person('kim'));
    await raw.createEntity({ partitionKey: 'people', rowKey: 'plain', City: 'x' });
    await raw.createEntity({ partitionKey: 'people', rowKey: 'broken', _ClientEncryptionMetadata1: '{nope' });
    const page = await enc.listEntityKeyMetadata({ filter: "PartitionKey eq 'people'" });
    assert.equal(page.unencrypted, 1);
    assert.deepEqual(
      page.items.map((i) => [
        i.rowKey,
        i.kind,
        i.kind === 'encrypted' ? i.metadata.wrappedContentKey.keyId : i.error.code,
      ]),
      [
        ['broken', 'invalid', 'InvalidEncryptionData'],
        ['jo', 'encrypted', 'local:tables-it-2'],
        ['kim', 'encrypted', kek.keyId],
      ],
    );
    await rejectsWith(enc.readEntityKeyMetadata('people', 'plain'), 'NotEncrypted');
  });
});
