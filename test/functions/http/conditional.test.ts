import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { evaluatePreconditions, parseEntityTags, rangeStillApplies } from '../../../functions/http/conditional';

const current = { etag: '"0x8DABC"', lastModified: new Date('2025-01-02T03:04:05Z') };
const h = (init: Record<string, string>): Headers => new Headers(init);

describe('entity tag lists', () => {
  it('parses *, single, lists and weak tags; drops junk', () => {
    assert.equal(parseEntityTags('*'), '*');
    assert.deepEqual(parseEntityTags('"a"'), ['"a"']);
    assert.deepEqual(parseEntityTags(' "a" , W/"b","c"'), ['"a"', 'W/"b"', '"c"']);
    assert.deepEqual(parseEntityTags('unquoted'), []);
    assert.equal(parseEntityTags(null), undefined);
  });
});

describe('preconditions', () => {
  it('If-Match: * and the current tag proceed; others fail; weak tags never match', () => {
    assert.equal(evaluatePreconditions(h({ 'if-match': '*' }), current, 'GET'), 'proceed');
    assert.equal(evaluatePreconditions(h({ 'if-match': '"x", "0x8DABC"' }), current, 'GET'), 'proceed');
    assert.equal(evaluatePreconditions(h({ 'if-match': '"other"' }), current, 'GET'), 'precondition-failed');
    assert.equal(evaluatePreconditions(h({ 'if-match': 'W/"0x8DABC"' }), current, 'GET'), 'precondition-failed');
  });
  it('If-None-Match gives 304 on GET/HEAD (weak comparison) and 412 on other methods', () => {
    assert.equal(evaluatePreconditions(h({ 'if-none-match': '"0x8DABC"' }), current, 'GET'), 'not-modified');
    assert.equal(evaluatePreconditions(h({ 'if-none-match': 'W/"0x8DABC"' }), current, 'HEAD'), 'not-modified');
    assert.equal(evaluatePreconditions(h({ 'if-none-match': '*' }), current, 'GET'), 'not-modified');
    assert.equal(evaluatePreconditions(h({ 'if-none-match': '"old"' }), current, 'GET'), 'proceed');
    assert.equal(evaluatePreconditions(h({ 'if-none-match': '"0x8DABC"' }), current, 'DELETE'), 'precondition-failed');
  });
  it('If-Match is checked before If-None-Match', () => {
    const headers = h({ 'if-match': '"other"', 'if-none-match': '"0x8DABC"' });
    assert.equal(evaluatePreconditions(headers, current, 'GET'), 'precondition-failed');
  });
  it('dates: If-Unmodified-Since and If-Modified-Since (ignored when the tag header is present)', () => {
    const before = 'Wed, 01 Jan 2025 00:00:00 GMT';
    const same = current.lastModified.toUTCString();
    assert.equal(evaluatePreconditions(h({ 'if-unmodified-since': before }), current, 'GET'), 'precondition-failed');
    assert.equal(evaluatePreconditions(h({ 'if-unmodified-since': same }), current, 'GET'), 'proceed');
    assert.equal(evaluatePreconditions(h({ 'if-modified-since': same }), current, 'GET'), 'not-modified');
    assert.equal(evaluatePreconditions(h({ 'if-modified-since': before }), current, 'GET'), 'proceed');
    assert.equal(
      evaluatePreconditions(h({ 'if-none-match': '"old"', 'if-modified-since': same }), current, 'GET'),
      'proceed',
    );
    assert.equal(evaluatePreconditions(h({ 'if-modified-since': 'not a date' }), current, 'GET'), 'proceed');
  });
});

describe('If-Range', () => {
  it('applies the range only while the strong tag or the exact date still match', () => {
    assert.equal(rangeStillApplies(h({}), current), true);
    assert.equal(rangeStillApplies(h({ 'if-range': '"0x8DABC"' }), current), true);
    assert.equal(rangeStillApplies(h({ 'if-range': '"old"' }), current), false);
    assert.equal(rangeStillApplies(h({ 'if-range': 'W/"0x8DABC"' }), current), false);
    assert.equal(rangeStillApplies(h({ 'if-range': current.lastModified.toUTCString() }), current), true);
    assert.equal(rangeStillApplies(h({ 'if-range': 'Wed, 01 Jan 2025 00:00:00 GMT' }), current), false);
    assert.equal(rangeStillApplies(h({ 'if-range': 'garbage' }), current), false);
  });
});
