import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mapBounded } from '../../shared/mapBounded';

describe('mapBounded', () => {
  it('keeps at most `limit` calls in flight and returns results in input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const items = Array.from({ length: 40 }, (_, i) => i);
    const out = await mapBounded(items, 5, async (x) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, (x * 7) % 11));
      inFlight--;
      return x * 2;
    });
    assert.deepEqual(
      out,
      items.map((x) => x * 2),
    );
    assert.equal(peak, 5);
  });

  it('stops starting work after a failure, waits for what is running, and rethrows the first error', async () => {
    const started: number[] = [];
    let running = 0;
    let finishedAfterReject = false;
    const p = mapBounded(
      Array.from({ length: 20 }, (_, i) => i),
      3,
      async (x) => {
        started.push(x);
        running++;
        try {
          if (x === 2) throw new Error('boom');
          await new Promise((r) => setTimeout(r, 20));
        } finally {
          running--;
        }
        return x;
      },
    );
    await assert.rejects(p, /boom/);
    finishedAfterReject = running === 0;
    assert.ok(finishedAfterReject, 'no call still running when it rejects');
    assert.ok(started.length < 20, `stopped early (${started.length} started)`);
  });

  it('rejects a bad limit and handles an empty list', async () => {
    await assert.rejects(
      mapBounded([1], 0, async (x) => x),
      RangeError,
    );
    assert.deepEqual(await mapBounded([], 4, async (x) => x), []);
  });
});
