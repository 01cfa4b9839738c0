import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import { parseNameList, serializeNameListV1, serializeNameListV2 } from '../../../shared/tables/nameList';

describe('encrypted name list', () => {
  it("1.0 is written exactly as Python's json.dumps (the vectors' metadata2 plaintext)", () => {
    assert.equal(serializeNameListV1(['Secret', 'Empty', 'Long']), '["Secret", "Empty", "Long"]');
    assert.equal(serializeNameListV1([]), '[]');
    assert.equal(serializeNameListV1(['Prénom']), '["Pr\\u00e9nom"]');
  });

  it('2.0 is compact JSON', () => {
    assert.equal(serializeNameListV2(['a', 'b']), '["a","b"]');
  });

  it('reads JSON lists in any spacing, and the legacy Java [a, b] form', () => {
    assert.deepEqual(parseNameList('["a", "b"]', false, 'IntegrityCheckFailed'), ['a', 'b']);
    assert.deepEqual(parseNameList('["a","b"]', false, 'IntegrityCheckFailed'), ['a', 'b']);
    assert.deepEqual(parseNameList('[sampleProp3, sampleProp, sampleProp2]', true, 'IntegrityCheckFailed'), [
      'sampleProp3',
      'sampleProp',
      'sampleProp2',
    ]);
    assert.deepEqual(parseNameList('["a", "b"]', true, 'IntegrityCheckFailed'), ['a', 'b']);
    assert.deepEqual(parseNameList('[]', true, 'IntegrityCheckFailed'), []);
  });

  it('refuses anything that is not a list of distinct names, with the given code', () => {
    for (const [text, java] of [
      ['{"a":1}', false],
      ['["a", 1]', false],
      ['["a", "a"]', false],
      ['[""]', false],
      ['not json', false],
      ['a, b', true],
    ] as const) {
      for (const code of ['IntegrityCheckFailed', 'InvalidEncryptionData'] as const) {
        assert.throws(
          () => parseNameList(text, java, code),
          (e) => isCseError(e, code),
          text,
        );
      }
    }
  });
});
