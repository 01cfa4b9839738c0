/**
 * Backpressure and client departure for streamed HTTP responses.
 *
 * @azure/functions (4.x) writes a streamed response body to the host's proxy connection without waiting for
 * 'drain', pulling the next chunk as soon as the last one is buffered, and it keeps writing after that connection
 * closed (Azure/azure-functions-nodejs-library#294, open). A client slower than Storage would make the worker
 * hold the rest of a download in memory; a client that left would still be fed, from Storage, to the last byte.
 *
 * The library's proxy is a plain `http.Server`, so node's built-in diagnostics channel
 * `http.server.request.start` (documented since node 18, stability "experimental" like every built-in channel)
 * shows us its `ServerResponse` for each request, keyed by the `x-ms-invocation-id` header the host sends with
 * it. A response body then asks `ready()` before it produces the next chunk: it waits while that response holds
 * more than RESPONSE_BUFFER unsent bytes, and stops when it closed.
 *
 * Without the proxy (buffered HTTP, a host that does not send the header, a node without the channel) there is
 * no flow, and bodies are produced as fast as the library pulls them, as before.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';

const INVOCATION_ID_HEADER = 'x-ms-invocation-id';

/**
 * Unsent bytes a response may hold before the body waits for it to drain: one region. Decryption releases a
 * region at a time (4 MiB, once its tag verifies), so the write-out of one region can overlap the storage read
 * of the next; waiting at the socket's own 16 KiB mark would stop that read at every burst. Either way memory
 * stays a few regions per download. (Measured on two CPUs, the two marks and no flow control at all gave the
 * same download throughput within the noise: 167–187 MB/s at 256 MiB.)
 */
export const RESPONSE_BUFFER = 4 * 1024 * 1024;

/** Proxy responses not yet claimed by their invocation; an entry leaves when claimed or when it closes. */
const unclaimed = new Map<string, ServerResponse>();

interface RequestStart {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
}

subscribe('http.server.request.start', (message) => {
  const { request, response } = message as RequestStart;
  const id = request.headers[INVOCATION_ID_HEADER];
  if (typeof id !== 'string') return;
  unclaimed.set(id, response);
  response.once('close', () => {
    if (unclaimed.get(id) === response) unclaimed.delete(id);
  });
});

/** Whether the response can take another chunk now, later, or never. */
export interface ResponseFlow {
  /** 'ready' at once while the response holds at most RESPONSE_BUFFER, else on 'drain'; 'closed' once it closed. */
  ready(): Promise<'ready' | 'closed'>;
}

/** The flow of the response the host is waiting on for this invocation, if it is streamed through the proxy. */
export function responseFlow(invocationId: string): ResponseFlow | undefined {
  const response = unclaimed.get(invocationId);
  if (response === undefined) return undefined;
  unclaimed.delete(invocationId);
  return { ready: () => readiness(response) };
}

function readiness(response: ServerResponse): Promise<'ready' | 'closed'> {
  if (response.destroyed || response.writableEnded) return Promise.resolve('closed');
  // Above the socket's own mark, write() returned false, so 'drain' comes once the buffer emptied.
  if (response.writableLength <= RESPONSE_BUFFER || !response.writableNeedDrain) return Promise.resolve('ready');
  return new Promise((resolve) => {
    const settle = (outcome: 'ready' | 'closed'): void => {
      response.off('drain', onDrain);
      response.off('close', onClose);
      resolve(outcome);
    };
    const onDrain = (): void => settle('ready');
    const onClose = (): void => settle('closed');
    response.once('drain', onDrain);
    response.once('close', onClose);
  });
}
