import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import {
  assertFilterAvoidsEncrypted,
  filterPropertyNames,
  odataString,
  selectWithMetadata,
} from '../../../shared/tables/odataQuery';

describe('$filter and $select on encrypted tables', () => {
  it('finds the property names a filter mentions, skipping literals and keywords', () => {
    assert.deepEqual(filterPropertyNames("PartitionKey eq 'Ssn' and Age gt 30"), ['PartitionKey', 'Age']);
    assert.deepEqual(filterPropertyNames("Name eq 'it''s Email' or not (Flag eq true)"), ['Name', 'Flag']);
    assert.deepEqual(
      filterPropertyNames(
        "When ge datetime'2024-01-01T00:00:00Z' and Id eq guid'c9da6455-213d-42c9-9a79-3e9149a57833' and Big eq 5L",
      ),
      ['When', 'Id', 'Big'],
    );
    assert.deepEqual(filterPropertyNames("Data eq X'0AFF' and Ratio lt 1.5e3"), ['Data', 'Ratio']);
  });

  it('refuses a filter naming an encrypted property, with an explanation', () => {
    assert.throws(
      () => assertFilterAvoidsEncrypted("PartitionKey eq 'p' and (Email eq 'a@b.c')", ['Email', 'Ssn']),
      (e) =>
        isCseError(e, 'EncryptedPropertyFilter') &&
        /Email, which is stored encrypted/.test(e.message) &&
        /ciphertext/.test(e.message),
    );
    assertFilterAvoidsEncrypted("Plain eq 'Email'", ['Email']); // only a literal mentions it
  });

  it('adds both metadata properties and the keys to a $select, not to "all properties"', () => {
    assert.deepEqual(selectWithMetadata(['Email', 'Age']), [
      'Email',
      'Age',
      '_ClientEncryptionMetadata1',
      '_ClientEncryptionMetadata2',
      'PartitionKey',
      'RowKey',
    ]);
    assert.deepEqual(selectWithMetadata(['RowKey', '_ClientEncryptionMetadata1', 'A', 'A']), [
      'RowKey',
      '_ClientEncryptionMetadata1',
      'A',
      '_ClientEncryptionMetadata2',
      'PartitionKey',
    ]);
    assert.equal(selectWithMetadata(undefined), undefined);
    assert.equal(selectWithMetadata([]), undefined);
    assert.equal(selectWithMetadata(['*']), undefined);
  });

  it('quotes OData strings', () => {
    assert.equal(odataString("it's"), "'it''s'");
  });
});
