/** The source record stored in a target's metadata: round trips (any Unicode name), matching, stripping. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeUserMetadata } from '../../../shared/storage/metadata';
import {
  readRecord,
  recordMetadata,
  recordsSource,
  recordsSourceVersion,
  withoutRecord,
} from '../../../shared/ingest/sourceRecord';

describe('source record', () => {
  const source = { container: 'landing', name: 'dir/naïve file 💎 "q".csv' };

  it('round-trips a blob source through valid metadata (ASCII header values, lower-case names)', () => {
    const metadata = recordMetadata({ kind: 'blob', source, etag: '"0x8DC0FFEE"' });
    // The stored form passes the same validation as user metadata.
    assert.deepEqual(normalizeUserMetadata(Object.entries(metadata)), metadata);
    assert.deepEqual(readRecord(metadata), { kind: 'blob', source, etag: '"0x8DC0FFEE"' });
  });

  it('round-trips an inline record', () => {
    const metadata = recordMetadata({ kind: 'inline', sha256: 'ab'.repeat(32) });
    assert.deepEqual(readRecord(metadata), { kind: 'inline', sha256: 'ab'.repeat(32) });
  });

  it('reads names in any case (listings keep the writer case) and ignores incomplete or broken records', () => {
    const upper = Object.fromEntries(
      Object.entries(recordMetadata({ kind: 'blob', source, etag: 'e' })).map(([k, v]) => [k.toUpperCase(), v]),
    );
    assert.deepEqual(readRecord(upper), { kind: 'blob', source, etag: 'e' });
    assert.equal(readRecord({ cse_ingest_source_container: 'landing', cse_ingest_source_name: 'x' }), undefined);
    assert.equal(
      readRecord({ cse_ingest_source_container: 'l', cse_ingest_source_name: '%E0%A4%A', cse_ingest_source_etag: 'e' }),
      undefined,
    );
    assert.equal(readRecord(undefined), undefined);
    assert.equal(readRecord({ other: 'x' }), undefined);
  });

  it('matches a source by container and name, and a version by ETag too', () => {
    const record = readRecord(recordMetadata({ kind: 'blob', source, etag: 'e1' }));
    assert.equal(recordsSource(record, source), true);
    assert.equal(recordsSource(record, { ...source, container: 'other' }), false);
    assert.equal(recordsSource(record, { ...source, name: 'dir/other.csv' }), false);
    assert.equal(recordsSourceVersion(record, source, 'e1'), true);
    assert.equal(recordsSourceVersion(record, source, 'e2'), false);
    assert.equal(recordsSource(readRecord(recordMetadata({ kind: 'inline', sha256: 'x' })), source), false);
  });

  it('strips an earlier record from carried-over metadata, keeping the rest lower-cased', () => {
    assert.deepEqual(
      withoutRecord({ Owner: 'a', cse_ingest_source_container: 'x', CSE_INGEST_CONTENT_SHA256: 'y', cse_other: 'z' }),
      { owner: 'a', cse_other: 'z' },
    );
  });
});
