/** CSE_ROTATION_CONCURRENCY as one bound on the key operations of all work items of a process. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyEncryptionKey, KeyResolver } from '../../../shared/keys/kek';
import { Semaphore, keyCallSemaphore, limitedKey, limitedResolver } from '../../../shared/rotation/keyCallLimit';
import { mapBounded } from '../../../shared/mapBounded';

/** A key whose operations take a little time and record how many ran at once. */
function slowKey(stats: { inFlight: number; peak: number; calls: number }): KeyEncryptionKey {
  const op = async (input: Uint8Array): Promise<Buffer> => {
    stats.calls++;
    stats.peak = Math.max(stats.peak, ++stats.inFlight);
    await new Promise((r) => setTimeout(r, 5));
    stats.inFlight--;
    return Buffer.from(input);
  };
  return { keyId: 'k', defaultAlgorithm: 'A256KW', wrapKey: (_a, k) => op(k), unwrapKey: (_a, k) => op(k) };
}

describe('keyCallLimit', () => {
  it('bounds key calls across concurrent work items, not only within one', async () => {
    const stats = { inFlight: 0, peak: 0, calls: 0 };
    const key = slowKey(stats);
    const resolver: KeyResolver = { resolve: async () => key };
    const owner = {};
    // Four work items at once, each with per-item concurrency 3 (what a host runs), the process bound 3.
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const limited = limitedResolver(resolver, keyCallSemaphore(owner, 3));
        await mapBounded(Array.from({ length: 10 }), 3, async () => {
          const k = await limited.resolve('k');
          await k.unwrapKey('A256KW', Buffer.alloc(40));
          await k.wrapKey('A256KW', Buffer.alloc(32));
        });
      }),
    );
    assert.equal(stats.calls, 80);
    assert.equal(stats.peak, 3);
    assert.equal(keyCallSemaphore(owner, 99).limit, 3, 'one semaphore per owner, created once');
  });

  it('keeps the key id and algorithm, passes results and errors through, and frees the slot on failure', async () => {
    const semaphore = new Semaphore(1);
    const failing: KeyEncryptionKey = {
      keyId: 'kid',
      defaultAlgorithm: 'RSA-OAEP',
      wrapKey: async () => Buffer.from('w'),
      unwrapKey: async () => {
        throw new Error('no');
      },
    };
    const limited = limitedKey(failing, semaphore);
    assert.equal(limited.keyId, 'kid');
    assert.equal(limited.defaultAlgorithm, 'RSA-OAEP');
    await assert.rejects(limited.unwrapKey('RSA-OAEP', Buffer.alloc(1)), /no/);
    assert.deepEqual(await limited.wrapKey('RSA-OAEP', Buffer.alloc(1)), Buffer.from('w'));
    assert.equal(semaphore.peak, 1);
    assert.throws(() => new Semaphore(0), RangeError);
  });
});
