import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseRangeHeader, parseRangeSpec, resolveRange } from '../../../shared/crypto/httpRange';
import { isCseError } from '../../../shared/errors';

test('Range header: the three single-range forms', () => {
  assert.deepEqual(parseRangeHeader('bytes=0-499'), { kind: 'bounded', start: 0, end: 499 });
  assert.deepEqual(parseRangeHeader('bytes=9500-'), { kind: 'from', start: 9500 });
  assert.deepEqual(parseRangeHeader('bytes=-500'), { kind: 'suffix', length: 500 });
  assert.deepEqual(parseRangeHeader('Bytes = 5-5 '), { kind: 'bounded', start: 5, end: 5 });
});

test('Range header: absent, malformed, other units and multiple ranges are ignored (undefined)', () => {
  for (const h of [
    undefined,
    null,
    '',
    'bytes',
    'bytes=',
    'bytes=-',
    'bytes=a-b',
    'bytes=1-2-3',
    'bytes=5-4', // last before first: invalid
    'bytes=+1-2',
    'bytes=1.5-2',
    'bytes=0-1,5-6',
    'items=0-1',
    '0-1',
  ]) {
    assert.equal(parseRangeHeader(h), undefined, String(h));
  }
});

test('CLI range: strict forms, typed errors saying why', () => {
  assert.deepEqual(parseRangeSpec('0-0'), { kind: 'bounded', start: 0, end: 0 });
  assert.deepEqual(parseRangeSpec('10-'), { kind: 'from', start: 10 });
  assert.deepEqual(parseRangeSpec('-7'), { kind: 'suffix', length: 7 });
  assert.throws(
    () => parseRangeSpec('5-4'),
    (e) => isCseError(e, 'InvalidRange') && /ends before it starts/.test(e.message),
  );
  for (const bad of ['', '-', 'bytes=0-1', ' 0-1', '1,2', 'x-1', '1-2-3']) {
    assert.throws(
      () => parseRangeSpec(bad),
      (e) => isCseError(e, 'InvalidRange') && /not of the form/.test(e.message),
      bad,
    );
  }
});

test('resolveRange: clamps to the content, unsatisfiable past the end or when empty', () => {
  assert.deepEqual(resolveRange({ kind: 'bounded', start: 2, end: 1000 }, 10), { start: 2, end: 9 });
  assert.deepEqual(resolveRange({ kind: 'from', start: 9 }, 10), { start: 9, end: 9 });
  assert.equal(resolveRange({ kind: 'from', start: 10 }, 10), 'unsatisfiable');
  assert.deepEqual(resolveRange({ kind: 'suffix', length: 3 }, 10), { start: 7, end: 9 });
  assert.deepEqual(resolveRange({ kind: 'suffix', length: 30 }, 10), { start: 0, end: 9 });
  assert.equal(resolveRange({ kind: 'suffix', length: 0 }, 10), 'unsatisfiable');
  assert.equal(resolveRange({ kind: 'bounded', start: 0, end: 0 }, 0), 'unsatisfiable');
  assert.equal(resolveRange({ kind: 'suffix', length: 5 }, 0), 'unsatisfiable');
});

test('huge positions are clamped rather than losing precision', () => {
  assert.deepEqual(resolveRange(parseRangeSpec('5-99999999999999999999999'), 100), { start: 5, end: 99 });
  assert.equal(resolveRange(parseRangeSpec('99999999999999999999999-'), 100), 'unsatisfiable');
});

test('property: a resolved range is always inside the content and agrees with slice semantics', () => {
  const req = fc.oneof(
    fc.tuple(fc.nat(300), fc.nat(300)).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
    fc.nat(300).map((a) => `${a}-`),
    fc.nat(300).map((n) => `-${n}`),
  );
  fc.assert(
    fc.property(req, fc.nat(250), (spec, total) => {
      const content = Array.from({ length: total }, (_, i) => i);
      const parsed = parseRangeSpec(spec);
      assert.deepEqual(parseRangeHeader(`bytes=${spec}`), parsed);
      const r = resolveRange(parsed, total);
      let expected: number[];
      if (parsed.kind === 'suffix') expected = parsed.length === 0 ? [] : content.slice(-parsed.length);
      else if (parsed.kind === 'from') expected = content.slice(parsed.start);
      else expected = content.slice(parsed.start, parsed.end + 1);
      if (r === 'unsatisfiable') assert.deepEqual(expected, []);
      else {
        assert.ok(0 <= r.start && r.start <= r.end && r.end < total);
        assert.deepEqual(content.slice(r.start, r.end + 1), expected);
      }
    }),
  );
});
