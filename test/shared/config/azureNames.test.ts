import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  isContainerAllowed,
  isEncryptablePropertyName,
  isTableAllowed,
  isValidContainerName,
  isValidQueueName,
  isValidTableName,
} from '../../../shared/config/azureNames';

describe('Azure Storage names', () => {
  it('containers and queues', () => {
    for (const name of ['abc', 'a-b-c', '123', 'x'.repeat(63)]) {
      assert.ok(isValidContainerName(name), name);
      assert.ok(isValidQueueName(name), name);
    }
    for (const name of ['ab', 'x'.repeat(64), 'Abc', 'a--b', '-ab', 'ab-', 'a_b', 'a.b', '']) {
      assert.ok(!isValidContainerName(name), name);
      assert.ok(!isValidQueueName(name), name);
    }
    assert.ok(isValidContainerName('$web') && isValidContainerName('$root') && !isValidQueueName('$web'));
  });

  it('tables', () => {
    for (const name of ['abc', 'Orders', 'A12', 'x'.repeat(63)]) assert.ok(isValidTableName(name), name);
    for (const name of ['ab', '1abc', 'a-b', 'a_b', 'x'.repeat(64), 'tables', 'Tables'])
      assert.ok(!isValidTableName(name), name);
  });

  it('encryptable property names', () => {
    for (const name of ['card', '_x', 'Card_Number2']) assert.ok(isEncryptablePropertyName(name), name);
    for (const name of [
      'PartitionKey',
      'RowKey',
      'Timestamp',
      '_ClientEncryptionMetadata1',
      '2x',
      'a-b',
      'x'.repeat(256),
    ]) {
      assert.ok(!isEncryptablePropertyName(name), name);
    }
  });

  it('allow-lists', () => {
    const all = { kind: 'all' } as const;
    assert.ok(isContainerAllowed(all, 'data'));
    assert.ok(!isContainerAllowed(all, 'azure-webjobs-hosts'));
    assert.ok(!isContainerAllowed(all, '$web'));
    assert.ok(isContainerAllowed({ kind: 'only', names: ['$web'] }, '$web'), 'an explicit list allows what it names');
    assert.ok(!isTableAllowed(all, 'AzureWebJobsHostLogs202601'));
    assert.ok(!isTableAllowed(all, 'Rotations'));
    assert.ok(!isTableAllowed({ kind: 'only', names: ['rotations'] }, 'rotations'));
  });
});
