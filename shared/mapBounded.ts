/**
 * Bounded concurrency: per-object rotation work (CSE_ROTATION_CONCURRENCY), decrypting a page of entities, sizing
 * v1 blobs in a listing.
 *
 * `mapBounded` runs `fn` over `items` with at most `limit` calls in flight and returns the results in input
 * order. If a call throws, no further calls are started, the calls already in flight are awaited (so nothing
 * keeps running behind the caller's back, e.g. a metadata write after the message was released), and the first
 * error is rethrown.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure !== undefined) throw failure.error;
  return results;
}
