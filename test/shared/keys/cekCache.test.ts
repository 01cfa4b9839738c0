import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { UnwrappedKeyCache } from '../../../shared/keys/cekCache';

/** An unwrap function that counts its calls and returns a fixed secret per wrapped key. */
function counter() {
  const secrets = new Map<string, Buffer>();
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    unwrap: (wrapped: Buffer) => async () => {
      calls += 1;
      const hex = wrapped.toString('hex');
      if (!secrets.has(hex)) secrets.set(hex, randomBytes(32));
      return Buffer.from(secrets.get(hex) as Buffer);
    },
    secret: (wrapped: Buffer) => secrets.get(wrapped.toString('hex')),
  };
}

describe('UnwrappedKeyCache', () => {
  it('unwraps once per (key id, algorithm, wrapped key)', async () => {
    const cache = new UnwrappedKeyCache();
    const c = counter();
    const w1 = randomBytes(48);
    const w2 = randomBytes(48);
    const a = await cache.getOrUnwrap('k1', 'A256KW', w1, c.unwrap(w1));
    const b = await cache.getOrUnwrap('k1', 'A256KW', w1, c.unwrap(w1));
    assert.deepEqual(a, b);
    assert.equal(c.calls, 1);
    await cache.getOrUnwrap('k1', 'A256KW', w2, c.unwrap(w2));
    await cache.getOrUnwrap('k2', 'A256KW', w1, c.unwrap(w1)); // same bytes, another key: another entry
    await cache.getOrUnwrap('k1', 'RSA-OAEP', w1, c.unwrap(w1)); // another algorithm: another entry
    assert.equal(c.calls, 4);
    assert.equal(cache.size, 4);
  });

  it('hands out copies: zeroing what it returns does not damage the cache', async () => {
    const cache = new UnwrappedKeyCache();
    const c = counter();
    const w = randomBytes(40);
    const first = await cache.getOrUnwrap('k', 'A256KW', w, c.unwrap(w));
    const expected = Buffer.from(first);
    first.fill(0);
    const second = await cache.getOrUnwrap('k', 'A256KW', w, c.unwrap(w));
    assert.deepEqual(second, expected);
    second.fill(0);
    assert.deepEqual(await cache.getOrUnwrap('k', 'A256KW', w, c.unwrap(w)), expected);
    assert.equal(c.calls, 1);
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = new UnwrappedKeyCache({ maxEntries: 2 });
    const c = counter();
    const [w1, w2, w3] = [randomBytes(40), randomBytes(40), randomBytes(40)];
    const get = (w: Buffer) => cache.getOrUnwrap('k', 'A256KW', w, c.unwrap(w));
    await get(w1);
    await get(w2);
    await get(w1); // w1 is now the most recent
    await get(w3); // evicts w2
    assert.equal(cache.size, 2);
    assert.equal(c.calls, 3);
    await get(w1);
    assert.equal(c.calls, 3);
    await get(w2);
    assert.equal(c.calls, 4);
  });

  it('expires entries ttlMs after the unwrap, however often they are read', async () => {
    let now = 1_000_000;
    const cache = new UnwrappedKeyCache({ ttlMs: 1000, now: () => now });
    const c = counter();
    const w = randomBytes(40);
    const get = () => cache.getOrUnwrap('k', 'A256KW', w, c.unwrap(w));
    await get();
    now += 600;
    await get();
    now += 399;
    await get();
    assert.equal(c.calls, 1);
    now += 1;
    await get();
    assert.equal(c.calls, 2);
  });

  it('concurrent misses share one unwrap; every caller gets its own copy', async () => {
    const cache = new UnwrappedKeyCache();
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const secret = randomBytes(32);
    const unwrap = async () => {
      calls += 1;
      await gate;
      return Buffer.from(secret);
    };
    const w = randomBytes(40);
    const pending = Array.from({ length: 5 }, () => cache.getOrUnwrap('k', 'A256KW', w, unwrap));
    release();
    const results = await Promise.all(pending);
    assert.equal(calls, 1);
    for (const r of results) assert.deepEqual(r, secret);
    results[0]?.fill(0);
    assert.deepEqual(results[1], secret, 'distinct buffers');
  });

  it('does not cache failures', async () => {
    const cache = new UnwrappedKeyCache();
    const w = randomBytes(40);
    let calls = 0;
    const failing = async (): Promise<Buffer> => {
      calls += 1;
      throw new Error('vault down');
    };
    await assert.rejects(cache.getOrUnwrap('k', 'A256KW', w, failing), /vault down/);
    await assert.rejects(cache.getOrUnwrap('k', 'A256KW', w, failing), /vault down/);
    assert.equal(calls, 2);
    assert.equal(cache.size, 0);
  });

  it('maxEntries 0 disables caching', async () => {
    const cache = new UnwrappedKeyCache({ maxEntries: 0 });
    const c = counter();
    const w = randomBytes(40);
    await cache.getOrUnwrap('k', 'A256KW', w, c.unwrap(w));
    await cache.getOrUnwrap('k', 'A256KW', w, c.unwrap(w));
    assert.equal(c.calls, 2);
    assert.equal(cache.size, 0);
  });

  it('clear() zeroes and drops every entry', async () => {
    const cache = new UnwrappedKeyCache();
    const c = counter();
    const w = randomBytes(40);
    await cache.getOrUnwrap('k', 'A256KW', w, c.unwrap(w));
    cache.clear();
    assert.equal(cache.size, 0);
    await cache.getOrUnwrap('k', 'A256KW', w, c.unwrap(w));
    assert.equal(c.calls, 2);
  });
});
