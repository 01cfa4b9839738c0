/** Counting snapshots and previous versions per key id: bounded, tolerant of untrusted metadata. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_COUNTED_KEY_IDS,
  OTHER_KEY_IDS,
  UNREADABLE_KEY_ID,
  addKeyCounts,
  decodeKeyCounts,
  encodeKeyCounts,
  isSnapshotOrPreviousVersion,
  storedKeyIdOf,
} from '../../../shared/rotation/snapshotCounts';

describe('snapshotCounts', () => {
  it('tells snapshots and previous versions from current blobs', () => {
    assert.equal(isSnapshotOrPreviousVersion({}), false);
    assert.equal(isSnapshotOrPreviousVersion({ snapshot: '' }), false);
    assert.equal(isSnapshotOrPreviousVersion({ snapshot: '2026-11-26T22:53:39.7140000Z' }), true);
    assert.equal(isSnapshotOrPreviousVersion({ versionId: 'v1', isCurrentVersion: true }), false);
    assert.equal(isSnapshotOrPreviousVersion({ versionId: 'v1' }), true);
    assert.equal(isSnapshotOrPreviousVersion({ versionId: 'v1', isCurrentVersion: false }), true);
  });

  it('reads the key id of encryption data, or names it unreadable', () => {
    const data = JSON.stringify({
      WrappedContentKey: { KeyId: 'local:a', EncryptedKey: Buffer.alloc(40).toString('base64'), Algorithm: 'A256KW' },
      EncryptionAgent: { Protocol: '2.0', EncryptionAlgorithm: 'AES_GCM_256' },
      EncryptedRegionInfo: { DataLength: 4194304, NonceLength: 12 },
      KeyWrappingMetadata: {},
      EncryptionMode: 'FullBlob',
    });
    assert.equal(storedKeyIdOf(data), 'local:a');
    assert.equal(storedKeyIdOf('{not json'), UNREADABLE_KEY_ID);
  });

  it('adds counts, bounding the distinct key ids kept (the rest under OTHER_KEY_IDS)', () => {
    assert.deepEqual(addKeyCounts({ a: 1 }, { a: 2, b: 1 }), { a: 3, b: 1 });
    let counts: Record<string, number> = {};
    for (let i = 0; i < MAX_COUNTED_KEY_IDS + 10; i++) counts = addKeyCounts(counts, { [`key-${i}`]: 1 });
    counts = addKeyCounts(counts, { 'key-0': 5, [`x${'y'.repeat(400)}`]: 2 });
    assert.equal(Object.keys(counts).length, MAX_COUNTED_KEY_IDS + 1);
    assert.equal(counts['key-0'], 6, 'a key already counted keeps counting');
    assert.equal(counts[OTHER_KEY_IDS], 10 + 2);
    assert.deepEqual(addKeyCounts({}, { a: 0, b: -1, c: 1.5 }), {}, 'only positive whole counts');
  });

  it('round-trips through the record, and reads anything else as no counts', () => {
    assert.deepEqual(decodeKeyCounts(encodeKeyCounts({ 'local:a': 3 })), { 'local:a': 3 });
    for (const bad of [undefined, '', 'nope', '[1]', '{"a":"1"}', 5]) assert.deepEqual(decodeKeyCounts(bad), {});
  });
});
