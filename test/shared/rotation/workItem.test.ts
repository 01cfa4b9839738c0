import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import {
  CHUNK_BYTES,
  PART_BYTES,
  decodeEntries,
  encodeEntries,
  fromChunkProperties,
  splitIntoParts,
  toChunkProperties,
  type WorkEntries,
} from '../../../shared/rotation/workItem';
import { decodeJob, encodeForQueue } from '../../../shared/rotation/jobMessages';

describe('work items', () => {
  it('round-trips blob and entity entries, including mixed-case metadata names and any characters', () => {
    const blobs: WorkEntries = {
      kind: 'blob',
      entries: [
        { name: 'a/b c/ü 𝄞.txt', etag: '"0x1"' },
        { name: "it's", etag: '"0x2"', mixedCaseNames: ['MyKey', 'Other_Name'] },
      ],
    };
    assert.deepEqual(decodeEntries('blob', encodeEntries(blobs)), blobs);
    const entities: WorkEntries = { kind: 'entity', entries: [{ partitionKey: "p'1", rowKey: 'r\u0001' }] };
    assert.deepEqual(decodeEntries('entity', encodeEntries(entities)), entities);
  });

  it('chunks into binary properties of at most CHUNK_BYTES and back, never splitting a character badly', () => {
    const long: WorkEntries = {
      kind: 'blob',
      entries: Array.from({ length: 250 }, (_, i) => ({ name: `${'𝄞'.repeat(200)}-${i}`, etag: `"0x${i}"` })),
    };
    const bytes = encodeEntries(long);
    const props = toChunkProperties('o', bytes);
    assert.ok(Object.keys(props).length > 1);
    for (const v of Object.values(props)) assert.ok(v.length <= CHUNK_BYTES);
    assert.deepEqual(decodeEntries('blob', fromChunkProperties('o', props)), long);
  });

  it('splits a page whose entries would not fit one entity into parts, keeping order', () => {
    const big: WorkEntries = {
      kind: 'blob',
      entries: Array.from({ length: 250 }, (_, i) => ({ name: `${'x'.repeat(1100)}${i}`, etag: 'e' })),
    };
    const parts = splitIntoParts(big);
    assert.ok(parts.length >= 2);
    for (const part of parts) assert.ok(encodeEntries(part).length <= PART_BYTES);
    assert.deepEqual(
      parts.flatMap((p): readonly unknown[] => p.entries),
      big.entries,
    );
    assert.equal(splitIntoParts({ kind: 'entity', entries: [] }).length, 1, 'an empty page is one empty part');
  });

  it('reports a corrupt work item as InvalidMessage', () => {
    for (const bad of ['{', '{}', '[[1,2]]', '[["a"]]', '[["a","b",[1]]]']) {
      assert.throws(
        () => decodeEntries('blob', Buffer.from(bad)),
        (e) => isCseError(e, 'InvalidMessage'),
        bad,
      );
    }
  });
});

describe('rotation job messages', () => {
  it('encode as base64 JSON (what the host decodes) and decode from an object or a JSON string', () => {
    const job = { kind: 'sweep', rotation: 'r1', unit: 'b:c', page: 3, token: 'next' } as const;
    const text = Buffer.from(encodeForQueue(job), 'base64').toString('utf8');
    assert.deepEqual(decodeJob(JSON.parse(text)), job);
    assert.deepEqual(decodeJob(text), job);
    assert.deepEqual(decodeJob({ v: 1, kind: 'page', rotation: 'r', item: 'i:b:c:000000000:000' }), {
      kind: 'page',
      rotation: 'r',
      item: 'i:b:c:000000000:000',
    });
  });

  it('refuses anything else as InvalidMessage', () => {
    const bad: unknown[] = [
      'not json',
      42,
      null,
      [],
      { kind: 'start', rotation: 'r' },
      { v: 1, kind: 'start' },
      { v: 1, kind: 'nope', rotation: 'r' },
      { v: 1, kind: 'sweep', rotation: 'r', unit: 'b:c', page: -1 },
      { v: 1, kind: 'sweep', rotation: 'r', unit: 'b:c', page: 0, token: 5 },
      { v: 1, kind: 'page', rotation: 'r', item: 'x' },
    ];
    for (const m of bad)
      assert.throws(
        () => decodeJob(m),
        (e) => isCseError(e, 'InvalidMessage'),
        JSON.stringify(m),
      );
  });
});
