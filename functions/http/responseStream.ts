/**
 * Response bodies for streamed HTTP responses.
 *
 * @azure/functions keeps a response body in a global `Response`. Given an async iterable, `Response` builds a
 * byte stream around it and copies every chunk into a fresh `Uint8Array` before the library writes it out
 * (node 20's undici: `new Uint8Array(chunk)`, then an ArrayBuffer transfer). For a download that is one more
 * allocation and copy of every byte, and more garbage collection: V8 collects after every few tens of MiB of new
 * Buffer memory. A ReadableStream body is used as it is: the library writes our Buffers themselves.
 */
import type { ResponseFlow } from './responseFlow';

/**
 * A pull-based ReadableStream over `source`: one chunk is read from `source` per pull, so the stream holds at
 * most one chunk ahead of the consumer. An error from `source` errors the stream (the library then fails the
 * invocation and the host aborts the response); cancelling the stream ends `source` early, which runs its
 * `finally` blocks (e.g. closes the storage download).
 *
 * With a `flow` (responseFlow.ts), each pull first waits until the proxy response has room, so a slow client
 * holds the download back instead of filling memory; once that response closed (the client went away), the
 * stream ends `source` and closes without reading further.
 */
export function responseStream(source: AsyncIterable<Uint8Array>, flow?: ResponseFlow): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (flow !== undefined && (await flow.ready()) === 'closed') {
          await iterator.return?.();
          controller.close();
          return;
        }
        const next = await iterator.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}
