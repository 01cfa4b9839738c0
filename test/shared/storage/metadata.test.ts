import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import {
  assertMetadataFits,
  encryptionDataOf,
  metadataSize,
  METADATA_SIZE_LIMIT,
  normalizeUserMetadata,
  userMetadataOf,
} from '../../../shared/storage/metadata';

describe('user metadata', () => {
  it('lower-cases names and keeps values', () => {
    assert.deepEqual(
      normalizeUserMetadata([
        ['Author', 'Ann Lee'],
        ['_x9', ''],
        ['tag', 'a=b;c'],
      ]),
      {
        author: 'Ann Lee',
        _x9: '',
        tag: 'a=b;c',
      },
    );
  });
  it('refuses encryptiondata in any case as ReservedMetadata', () => {
    for (const name of ['encryptiondata', 'EncryptionData', 'ENCRYPTIONDATA']) {
      assert.throws(
        () => normalizeUserMetadata([[name, 'x']]),
        (e) => isCseError(e, 'ReservedMetadata'),
      );
    }
  });
  it('refuses bad names, non-string and non-ASCII values, edge whitespace, case duplicates', () => {
    const bad: [string, unknown][][] = [
      [['bad-name', 'x']],
      [['1abc', 'x']],
      [['', 'x']],
      [['sp ace', 'x']],
      [['a', 5]],
      [['a', 'naïve']],
      [['a', ' padded']],
      [['a', 'line\nbreak']],
      [
        ['Dup', '1'],
        ['dup', '2'],
      ],
    ];
    for (const entries of bad) {
      assert.throws(
        () => normalizeUserMetadata(entries),
        (e) => isCseError(e, 'InvalidMetadata'),
        JSON.stringify(entries),
      );
    }
  });
  it('counts names and values against the 8 KiB limit', () => {
    const fits = { a: 'x'.repeat(METADATA_SIZE_LIMIT - 1) };
    assert.equal(metadataSize(fits), METADATA_SIZE_LIMIT);
    assertMetadataFits(fits);
    assert.throws(
      () => assertMetadataFits({ ...fits, b: '' }),
      (e) => isCseError(e, 'MetadataTooLarge'),
    );
  });
  it('separates the stored encryption data from user metadata', () => {
    const stored = { EncryptionData: '{"x":1}', Author: 'a' };
    assert.equal(encryptionDataOf(stored), '{"x":1}');
    assert.deepEqual(userMetadataOf(stored), { author: 'a' });
    assert.equal(encryptionDataOf({ author: 'a' }), undefined);
  });
});
