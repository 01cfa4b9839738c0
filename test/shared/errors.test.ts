import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CseError, isCseError } from '../../shared/errors';

test('CseError carries a code and a retry hint, and isCseError narrows by code', () => {
  const e = new CseError('KeyUnavailable', 'vault throttled', { retryAfterSeconds: 7 });
  assert.equal(e.code, 'KeyUnavailable');
  assert.equal(e.retryAfterSeconds, 7);
  assert.ok(isCseError(e));
  assert.ok(isCseError(e, 'KeyUnavailable'));
  assert.ok(!isCseError(e, 'KeyNotAllowed'));
  assert.ok(!isCseError(new Error('plain')));
});
