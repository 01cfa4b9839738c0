import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RandomizedBackoff } from '../../../localhost/queues/backoff';

describe('randomized exponential polling back-off', () => {
  it('doubles from 100 ms up to the maximum, and resets when work is found', () => {
    const backoff = new RandomizedBackoff(2000, 100, () => 0.5); // no jitter
    const delays = Array.from({ length: 8 }, () => backoff.next(false));
    assert.deepEqual(delays, [200, 300, 500, 900, 1700, 2000, 2000, 2000]);
    assert.equal(backoff.next(true), 100);
    assert.equal(backoff.next(false), 200);
  });

  it('jitters by at most 20 %', () => {
    const low = new RandomizedBackoff(60_000, 100, () => 0);
    const high = new RandomizedBackoff(60_000, 100, () => 0.999999);
    for (let i = 0; i < 4; i++) {
      low.next(false);
      high.next(false);
    }
    assert.equal(low.next(false), 100 + 0.8 * 16 * 100);
    assert.equal(high.next(false), Math.round(100 + 1.2 * 16 * 100));
  });
});
