/** The completion log line, the completion notice and failure reasons. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RestError } from '@azure/storage-blob';
import { CseError } from '../../../shared/errors';
import type { IngestOutcome } from '../../../shared/ingest/ingestion';
import { completionNotice, describeFailure, describeOutcome } from '../../../shared/ingest/ingestReport';

const outcome: IngestOutcome = {
  action: 'encrypted',
  form: 'eventGrid',
  envelope: true,
  source: { container: 'landing', name: 'in/a b.csv', etag: '"0x1"' },
  target: { container: 'encrypted', name: 'in/a b.csv', etag: '"0x2"' },
  size: 1234,
  keyId: 'https://vault.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef',
  protocol: '2.0',
  sourceDeleted: true,
  resumed: false,
  durationMs: 56,
};

describe('ingestion report', () => {
  it('logs source, target, size, key id and duration on one line, quoting names with spaces', () => {
    assert.equal(
      describeOutcome(outcome),
      'Ingestion completed: source="landing/in/a b.csv" target="encrypted/in/a b.csv" size=1234 ' +
        'keyId=https://vault.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef durationMs=56 ' +
        'action=encrypted protocol=2.0 sourceDeleted=true form=eventGrid+envelope',
    );
    assert.match(
      describeOutcome({ ...outcome, source: null, resumed: true }),
      /^Ingestion completed: source=inline .* resumed=true$/,
    );
  });

  it('builds the completion notice from the outcome', () => {
    assert.deepEqual(completionNotice(outcome, new Date('2024-05-06T07:08:09Z')), {
      action: 'encrypted',
      source: outcome.source,
      target: outcome.target,
      size: 1234,
      keyId: outcome.keyId,
      protocol: '2.0',
      sourceDeleted: true,
      durationMs: 56,
      completedAt: '2024-05-06T07:08:09.000Z',
    });
  });

  it('gives specific failure reasons', () => {
    assert.equal(describeFailure(new CseError('BlobNotFound', 'gone')), 'BlobNotFound: gone');
    const rest = new RestError('Server busy\nRequestId:1', { statusCode: 503, code: 'ServerBusy' });
    assert.equal(describeFailure(rest), 'ServerBusy: Azure Storage answered 503 (Server busy)');
    assert.equal(describeFailure(new TypeError('bad')), 'TypeError: bad');
    assert.equal(describeFailure('x'), 'Error: x');
  });
});
