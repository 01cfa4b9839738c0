/**
 * A bounded cache of unwrapped content keys, so that reading the same blob (or entity, or message) again does not
 * cost another Key Vault unwrap: Key Vault throttles per vault, and every unwrap is a network round trip.
 *
 * Entries are keyed by (key id, algorithm, SHA-256 of the wrapped key): the wrapped key is public, and its hash
 * keeps entries small. Values are secret: they are copied in and out (callers zero what they get back, see
 * keyWrapPayload.ts), zeroed when evicted or expired, and never logged. Bounded in size (least recently used
 * goes first) and in time (an entry lives `ttlMs` from when it was unwrapped, however often it is read, so a key
 * version that was disabled stops working within that time).
 *
 * Concurrent misses for the same entry share one unwrap.
 */
import { createHash } from 'node:crypto';

export interface CekCacheOptions {
  /** Maximum number of entries (default 10,000: about 2 MB). 0 disables caching. */
  readonly maxEntries?: number;
  /** Lifetime of an entry in milliseconds (default 10 minutes). */
  readonly ttlMs?: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

export const DEFAULT_CEK_CACHE_MAX_ENTRIES = 10_000;
export const DEFAULT_CEK_CACHE_TTL_MS = 10 * 60_000;

interface Entry {
  readonly value: Buffer;
  readonly expiresAt: number;
}

export class UnwrappedKeyCache {
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  /** Map iteration order is insertion order: re-inserting on every hit makes the first entry the LRU one. */
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, { readonly promise: Promise<Buffer>; waiters: number }>();

  constructor(options: CekCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? DEFAULT_CEK_CACHE_MAX_ENTRIES;
    this.#ttlMs = options.ttlMs ?? DEFAULT_CEK_CACHE_TTL_MS;
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.#maxEntries) || this.#maxEntries < 0)
      throw new RangeError('maxEntries must be an integer >= 0');
    if (!(this.#ttlMs >= 0)) throw new RangeError('ttlMs must be >= 0');
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Returns a copy of the cached unwrapped key, or calls `unwrap` once (shared by concurrent callers for the same
   * entry), caches a copy of its result and returns another copy.
   */
  async getOrUnwrap(
    keyId: string,
    algorithm: string,
    wrappedKey: Uint8Array,
    unwrap: () => Promise<Buffer>,
  ): Promise<Buffer> {
    const cacheKey = entryKey(keyId, algorithm, wrappedKey);
    const cached = this.#get(cacheKey);
    if (cached !== undefined) return cached;
    let flight = this.#inFlight.get(cacheKey);
    if (flight === undefined) {
      const promise = unwrap().then((value) => {
        this.#set(cacheKey, value);
        return value;
      });
      flight = { promise, waiters: 0 };
      this.#inFlight.set(cacheKey, flight);
    }
    flight.waiters += 1;
    let result: Buffer | undefined;
    try {
      result = await flight.promise;
      // Every caller gets its own copy: callers zero what they receive.
      return Buffer.from(result);
    } finally {
      flight.waiters -= 1;
      if (flight.waiters === 0) {
        if (this.#inFlight.get(cacheKey) === flight) this.#inFlight.delete(cacheKey);
        // The unwrap result itself was only ever copied from; the last waiter wipes it.
        result?.fill(0);
      }
    }
  }

  /** Drops (and zeroes) every entry. */
  clear(): void {
    for (const entry of this.#entries.values()) entry.value.fill(0);
    this.#entries.clear();
  }

  #get(cacheKey: string): Buffer | undefined {
    const entry = this.#entries.get(cacheKey);
    if (entry === undefined) return undefined;
    this.#entries.delete(cacheKey);
    if (entry.expiresAt <= this.#now()) {
      entry.value.fill(0);
      return undefined;
    }
    this.#entries.set(cacheKey, entry);
    return Buffer.from(entry.value);
  }

  #set(cacheKey: string, value: Buffer): void {
    if (this.#maxEntries === 0 || this.#ttlMs === 0) return;
    const previous = this.#entries.get(cacheKey);
    if (previous !== undefined) {
      previous.value.fill(0);
      this.#entries.delete(cacheKey);
    }
    this.#entries.set(cacheKey, { value: Buffer.from(value), expiresAt: this.#now() + this.#ttlMs });
    this.#evict();
  }

  #evict(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && entry.expiresAt > now) break;
      entry.value.fill(0);
      this.#entries.delete(key);
    }
  }
}

function entryKey(keyId: string, algorithm: string, wrappedKey: Uint8Array): string {
  const digest = createHash('sha256').update(wrappedKey).digest('base64');
  return `${keyId}\n${algorithm}\n${digest}`;
}
