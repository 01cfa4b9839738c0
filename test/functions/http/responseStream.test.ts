import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpResponse } from '@azure/functions';
import { responseStream } from '../../../functions/http/responseStream';

/** What the library's proxy writes: the chunks of the response body, as sendProxyResponse iterates them. */
async function bodyChunks(response: HttpResponse): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of response.body!) out.push(chunk);
  return out;
}

describe('responseStream', () => {
  it('hands the library our own Buffers: no per-chunk copy on the way to the proxy', async () => {
    const chunks = [Buffer.from('first chunk'), Buffer.alloc(64 * 1024, 7), Buffer.from('last')];
    async function* source(): AsyncGenerator<Buffer> {
      yield* chunks;
    }
    const got = await bodyChunks(new HttpResponse({ body: responseStream(source()) }));
    assert.equal(got.length, chunks.length);
    got.forEach((chunk, i) => assert.equal(chunk, chunks[i], `chunk ${i} is the very Buffer the source yielded`));
  });

  it('pulls lazily: nothing is read from the source before the response is read', async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 3; i++) {
        pulled++;
        yield Buffer.from([i]);
      }
    }
    const stream = responseStream(source());
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pulled, 0);
    const reader = stream.getReader();
    assert.deepEqual([...((await reader.read()).value ?? [])], [0]);
    assert.equal(pulled, 1, 'one chunk read per chunk asked for (bounded memory)');
  });

  it('errors the stream when the source fails (the host then aborts the response)', async () => {
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.from('authenticated region');
      throw new Error('region 1 failed authentication');
    }
    const response = new HttpResponse({ body: responseStream(source()) });
    await assert.rejects(bodyChunks(response), /region 1 failed authentication/);
  });

  it('ends the source when the reader cancels (a client that went away closes the storage read)', async () => {
    let closed = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        for (;;) yield Buffer.alloc(16);
      } finally {
        closed = true;
      }
    }
    const reader = responseStream(source()).getReader();
    await reader.read();
    await reader.cancel();
    assert.equal(closed, true);
  });
});
