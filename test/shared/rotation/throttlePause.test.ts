/** Which errors pause a rotation job, and for how long (end to end: test/functions/rotationTriggers.test.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CseError } from '../../../shared/errors';
import {
  MAX_THROTTLE_PAUSE_SECONDS,
  pauseSeconds,
  throttleRetryAfterSeconds,
} from '../../../shared/rotation/throttlePause';

describe('throttlePause', () => {
  it('pauses for Key Vault throttling only (KeyUnavailable with Retry-After, also as a cause)', () => {
    const throttled = new CseError('KeyUnavailable', 'throttled', { retryAfterSeconds: 7 });
    assert.equal(throttleRetryAfterSeconds(throttled), 7);
    assert.equal(throttleRetryAfterSeconds(new Error('wrapped', { cause: throttled })), 7);
    assert.equal(throttleRetryAfterSeconds(new CseError('KeyUnavailable', 'unreachable')), undefined);
    assert.equal(throttleRetryAfterSeconds(new CseError('KeyNotAllowed', 'no', { retryAfterSeconds: 3 })), undefined);
    assert.equal(throttleRetryAfterSeconds(new Error('other')), undefined);
    assert.equal(throttleRetryAfterSeconds('text'), undefined);
  });

  it('waits at least what the vault asked, at least 1 s, with up to 25 % jitter, at most the cap', () => {
    assert.equal(
      pauseSeconds(4, () => 0),
      4,
    );
    assert.equal(
      pauseSeconds(4, () => 0.999),
      4 + 0,
    );
    assert.equal(
      pauseSeconds(8, () => 0.999),
      8 + 1,
    );
    assert.equal(
      pauseSeconds(0, () => 0),
      1,
    );
    assert.equal(
      pauseSeconds(0.2, () => 0),
      1,
    );
    assert.equal(
      pauseSeconds(100, () => 0.5),
      112,
    );
    assert.equal(
      pauseSeconds(1e9, () => 0.9),
      MAX_THROTTLE_PAUSE_SECONDS,
    );
  });
});
