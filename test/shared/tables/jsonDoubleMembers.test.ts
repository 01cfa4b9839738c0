import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDoubleMembers } from '../../../shared/tables/jsonDoubleMembers';

describe('jsonDoubleMembers', () => {
  it('finds members written as numbers with a fraction or exponent, per object in document order', () => {
    const text =
      '{"odata.metadata":"x","value":[{"PartitionKey":"p","D":2.0,"I":2,"E":1e3,"N":-0.5,"S":"3.0"},' +
      '{"Tricky \\"D\\":2.0":1,"A\\u00e9":7.25,"B":[1.5],"C":true}]}';
    const objects = jsonDoubleMembers(text);
    assert.equal(objects.length, 3);
    assert.deepEqual([...objects[0]!], []);
    assert.deepEqual([...objects[1]!], ['D', 'E', 'N']);
    assert.deepEqual([...objects[2]!], ['Aé']);
  });

  it('handles a single entity body', () => {
    assert.deepEqual([...jsonDoubleMembers('{"Price":10.0,"Count":10}')[0]!], ['Price']);
  });
});
