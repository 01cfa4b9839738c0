import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RESPONSE_BUFFER, responseFlow } from '../../../functions/http/responseFlow';
import { responseStream } from '../../../functions/http/responseStream';

const CHUNK = Buffer.alloc(256 * 1024, 1);

/**
 * A server standing in for the library's HTTP proxy: it hands each request's response to the test, which
 * writes to it the way sendProxyResponse does (write after write, never waiting for 'drain').
 */
describe('responseFlow', () => {
  let server: http.Server;
  let port: number;
  const responses = new Map<string, http.ServerResponse>();

  before(async () => {
    server = http.createServer((req, res) => {
      responses.set(String(req.headers['x-test-id']), res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Sends a request (with an invocation id unless `invocationId` is null) and waits until the server has it. */
  async function request(testId: string, invocationId: string | null) {
    const headers: Record<string, string> = { 'x-test-id': testId };
    if (invocationId !== null) headers['x-ms-invocation-id'] = invocationId;
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers });
    const response = new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
    req.on('error', () => undefined);
    while (!responses.has(testId)) await new Promise((resolve) => setImmediate(resolve));
    return { req, response, serverResponse: responses.get(testId)! };
  }

  it('finds the proxy response of an invocation once, and none for requests without the header', async () => {
    await request('plain', null);
    assert.equal(responseFlow('plain'), undefined);
    await request('claimed', 'inv-claimed');
    assert.ok(responseFlow('inv-claimed'));
    assert.equal(responseFlow('inv-claimed'), undefined, 'claimed by its invocation, then forgotten');
  });

  it('is ready while the response has room, waits for a slow client, and is ready again once it reads', async () => {
    const { response, serverResponse } = await request('slow', 'inv-slow');
    const flow = responseFlow('inv-slow')!;
    serverResponse.writeHead(200).flushHeaders();
    assert.equal(await flow.ready(), 'ready');
    const client = await response;
    client.pause();
    await stall(serverResponse);
    assert.ok(serverResponse.writableNeedDrain);
    assert.equal(await flow.ready(), 'ready', 'reads ahead while the response holds less than RESPONSE_BUFFER');
    await fillUntilStalled(serverResponse);
    let outcome: string | undefined;
    const next = flow.ready().then((o) => (outcome = o));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(outcome, undefined, 'waits while the client does not read');
    client.resume();
    assert.equal(await next, 'ready');
    serverResponse.end();
  });

  it('says closed when the client went away, also to a pull already waiting', async () => {
    const { req, response, serverResponse } = await request('gone', 'inv-gone');
    const flow = responseFlow('inv-gone')!;
    serverResponse.writeHead(200).flushHeaders();
    (await response).pause();
    await fillUntilStalled(serverResponse);
    const waiting = flow.ready();
    req.destroy();
    assert.equal(await waiting, 'closed');
    assert.equal(await flow.ready(), 'closed');
  });

  it('makes a response stream end its source and close, without reading on, once the client left', async () => {
    const { req, serverResponse } = await request('stream', 'inv-stream');
    let pulled = 0;
    let finished = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          pulled++;
          yield CHUNK;
        }
      } finally {
        finished = true;
      }
    }
    const reader = responseStream(source(), responseFlow('inv-stream')).getReader();
    serverResponse.writeHead(200).flushHeaders();
    serverResponse.write((await reader.read()).value);
    req.destroy();
    await new Promise((resolve) => serverResponse.once('close', resolve));
    assert.deepEqual(await reader.read(), { done: true, value: undefined });
    assert.equal(pulled, 1);
    assert.equal(finished, true, 'the source was ended (its storage read closed)');
  });
});

/**
 * Writes until the response stays full: the client does not read, so the socket buffers (the kernel's too, a
 * few MiB on loopback) fill and 'drain' no longer comes.
 */
async function fillUntilStalled(response: http.ServerResponse): Promise<void> {
  await stall(response);
  // On into the response's own buffer, past RESPONSE_BUFFER, as the library's unconditional writes would.
  while (response.writableLength <= RESPONSE_BUFFER) response.write(CHUNK);
}

async function stall(response: http.ServerResponse): Promise<void> {
  for (let written = 0; written < 1024 * 1024 * 1024; written += CHUNK.length) {
    if (response.write(CHUNK)) continue;
    const drained = await Promise.race([
      new Promise((resolve) => response.once('drain', () => resolve(true))),
      new Promise((resolve) => setTimeout(() => resolve(false), 200)),
    ]);
    if (!drained) return;
  }
  throw new Error('the client read 1 GiB while paused');
}
