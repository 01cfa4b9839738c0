import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import {
  decodeContinuationToken,
  encodeContinuationToken,
  normalizeContinuationToken,
} from '../../../shared/tables/continuationToken';

describe('continuation tokens', () => {
  it('are ASCII so that the SDK (which decodes Latin-1) reads non-ASCII keys back intact', () => {
    const token = encodeContinuationToken({ nextPartitionKey: 'pk é', nextRowKey: 'rk 🚀' });
    const bytes = Buffer.from(token, 'base64');
    assert.ok(bytes.every((b) => b < 0x80));
    // What @azure/data-tables 13.3 does with a token: byte-wise String.fromCharCode, then JSON.parse.
    const sdkView = JSON.parse(String.fromCharCode(...bytes));
    assert.deepEqual(sdkView, { nextPartitionKey: 'pk é', nextRowKey: 'rk 🚀' });
  });

  it("normalizes the SDK's UTF-8 tokens", () => {
    const sdkToken = Buffer.from(JSON.stringify({ nextPartitionKey: 'é', nextRowKey: 'x' })).toString('base64');
    assert.deepEqual(decodeContinuationToken(normalizeContinuationToken(sdkToken)!), {
      nextPartitionKey: 'é',
      nextRowKey: 'x',
    });
    assert.equal(normalizeContinuationToken(undefined), undefined);
  });

  it('refuses tokens it did not issue', () => {
    for (const bad of [
      '',
      'not base64!',
      Buffer.from('{}').toString('base64'),
      Buffer.from('[1]').toString('base64'),
      Buffer.from('{"nextPartitionKey":1}').toString('base64'),
    ]) {
      assert.throws(
        () => decodeContinuationToken(bad),
        (e) => isCseError(e, 'InvalidContinuationToken'),
        bad,
      );
    }
  });
});
