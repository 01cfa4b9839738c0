import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import { tv } from '../../../shared/tables/entityModel';
import { entityFromWire, entityToWire, propertiesFromWire, propertiesToWire } from '../../../shared/tables/wireEntity';
import { storedEntity, tableVectors } from './tableFixtures';

describe('entity JSON wire form', () => {
  it('reads the service form of the vectors (annotations, binary, Int64)', () => {
    const e = storedEntity(tableVectors()[0]!);
    assert.equal(e.partitionKey, 'pk-golden');
    assert.deepEqual(e.properties['Num'], tv.int64('42'));
    assert.deepEqual(e.properties['Plain'], tv.string('visible'));
    assert.equal(e.properties['Secret']?.type, 'Binary');
  });

  it('infers String, Boolean, Int32 and Double for unannotated values', () => {
    const p = propertiesFromWire({ s: 'x', b: false, i: 2147483647, big: 2147483648, d: 1.5 });
    assert.deepEqual(p, {
      s: tv.string('x'),
      b: tv.boolean(false),
      i: tv.int32(2147483647),
      big: tv.double(2147483648),
      d: tv.double(1.5),
    });
  });

  it('round-trips every type through the wire form, keeping Double a Double', () => {
    const props = {
      S: tv.string('x'),
      B: tv.binary(Buffer.from('hi')),
      T: tv.boolean(true),
      I: tv.int32(3),
      L: tv.int64('9007199254740993'),
      D: tv.double(2),
      N: tv.double(NaN),
      Inf: tv.double(-Infinity),
      Dt: tv.dateTime('2024-05-01T12:00:00.1234567Z'),
      G: tv.guid('c9da6455-213d-42c9-9a79-3e9149a57833'),
    };
    const wire = propertiesToWire(props);
    assert.equal(wire['D@odata.type'], 'Edm.Double');
    assert.equal(wire['Inf'], '-Infinity');
    assert.equal(wire['I@odata.type'], undefined);
    const back = propertiesFromWire(JSON.parse(JSON.stringify(wire)));
    assert.deepEqual(back, props);
  });

  it('writes odata.etag, keys and Timestamp for a read entity', () => {
    const wire = entityToWire({
      partitionKey: 'p',
      rowKey: 'r',
      etag: 'W/"x"',
      timestamp: '2024-01-01T00:00:00Z',
      properties: { a: tv.int64('1') },
    });
    assert.deepEqual(Object.keys(wire), [
      'odata.etag',
      'PartitionKey',
      'RowKey',
      'Timestamp@odata.type',
      'Timestamp',
      'a@odata.type',
      'a',
    ]);
    assert.deepEqual(entityFromWire(wire).properties, { a: tv.int64('1') });
  });

  it('refuses malformed bodies with InvalidEntity naming the member', () => {
    const cases: unknown[] = [
      [],
      'x',
      { a: null },
      { a: { nested: 1 } },
      { 'a@odata.type': 'Edm.Int64' },
      { a: '1', 'a@odata.type': 'Edm.Decimal' },
      { a: 'zz', 'a@odata.type': 'Edm.Binary' },
      { a: '1.5', 'a@odata.type': 'Edm.Int64' },
      { a: 'no', 'a@odata.type': 'Edm.Guid' },
      { a: 'yesterday', 'a@odata.type': 'Edm.DateTime' },
      { a: 1, 'a@odata.foo': 'x' },
      { PartitionKey: 'p' },
    ];
    for (const body of cases) {
      assert.throws(
        () => propertiesFromWire(body),
        (e) => isCseError(e, 'InvalidEntity'),
        JSON.stringify(body),
      );
    }
  });

  it('keeps __proto__ as an ordinary property name', () => {
    const p = propertiesFromWire(JSON.parse('{"__proto__":"x"}'));
    assert.deepEqual(Object.keys(p), ['__proto__']);
    assert.equal(Object.getPrototypeOf(p), Object.prototype);
  });
});
