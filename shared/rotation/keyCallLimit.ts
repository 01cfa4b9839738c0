/**
 * CSE_ROTATION_CONCURRENCY as a bound on Key Vault calls per worker process, not only per work item.
 *
 * A work item re-wraps at most CSE_ROTATION_CONCURRENCY objects at a time, but the Functions host runs up to
 * `batchSize + newBatchThreshold` queue messages at once per instance (24 with this app's host.json), so without
 * a process-wide bound one instance could have 24 times that many unwraps in flight and spend the vault's whole
 * budget (Key Vault limits calls per vault, not per client). Every key operation of a rotation (the unwrap with
 * the old key, and the wrap with the target, which is remote for Managed HSM AES keys) goes through one
 * semaphore per rotation engine, i.e. per process.
 */
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';

export class Semaphore {
  #available: number;
  readonly #waiting: (() => void)[] = [];
  #inUse = 0;
  #peak = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
    this.#available = limit;
  }

  /** The most calls that were ever in flight at once (for tests and logs). */
  get peak(): number {
    return this.#peak;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#available > 0) this.#available--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#inUse++;
    this.#peak = Math.max(this.#peak, this.#inUse);
    try {
      return await fn();
    } finally {
      this.#inUse--;
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter, so a late arrival cannot overtake it.
      if (next !== undefined) next();
      else this.#available++;
    }
  }
}

const semaphores = new WeakMap<object, Semaphore>();

/** The semaphore of `owner` (one per rotation engine), created with `limit` on first use. */
export function keyCallSemaphore(owner: object, limit: number): Semaphore {
  let semaphore = semaphores.get(owner);
  if (semaphore === undefined) {
    semaphore = new Semaphore(limit);
    semaphores.set(owner, semaphore);
  }
  return semaphore;
}

/** The same key, with its wrap and unwrap calls through `semaphore`. */
export function limitedKey(key: KeyEncryptionKey, semaphore: Semaphore): KeyEncryptionKey {
  return {
    keyId: key.keyId,
    defaultAlgorithm: key.defaultAlgorithm,
    wrapKey: (algorithm, cek) => semaphore.run(() => key.wrapKey(algorithm, cek)),
    unwrapKey: (algorithm, wrapped) => semaphore.run(() => key.unwrapKey(algorithm, wrapped)),
  };
}

/** A resolver whose keys' calls go through `semaphore` (resolving itself is not limited: it is cached per version). */
export function limitedResolver(resolver: KeyResolver, semaphore: Semaphore): KeyResolver {
  return { resolve: async (keyId) => limitedKey(await resolver.resolve(keyId), semaphore) };
}
