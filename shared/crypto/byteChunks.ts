/** Small helpers for byte streams (async iterables of Uint8Array). */

/** Views a chunk as a Buffer without copying. Strings (a stream with an encoding set) are a programming error. */
export function asBuffer(chunk: Uint8Array): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`expected binary chunks (Uint8Array), got ${typeof chunk}`);
}

/** An async iterable over one buffer, cut into `chunkSize` pieces (for convenience wrappers and tests). */
export async function* chunksOf(data: Uint8Array, chunkSize = 1024 * 1024): AsyncGenerator<Buffer> {
  const buf = asBuffer(data);
  for (let i = 0; i < buf.length; i += chunkSize) yield buf.subarray(i, i + chunkSize);
}

/** Collects an async iterable of bytes into one Buffer. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(asBuffer(chunk));
  return Buffer.concat(parts);
}
