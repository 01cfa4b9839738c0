/**
 * Test-only HTTP functions for test/localhost/http.test.ts, registered through app.* exactly as the real app's
 * are. Streaming is on unless LOCALHOST_TEST_STREAM=0 (to cover both ways the host serves HTTP).
 */
import { Readable } from 'node:stream';
import { app, output, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

app.setup({ enableHttpStream: process.env.LOCALHOST_TEST_STREAM !== '0' });

/** Echoes what the handler saw: method, url, params, query, selected headers and the body's size and digest. */
async function echo(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const body = Buffer.from(await request.arrayBuffer());
  const { createHash } = await import('node:crypto');
  context.log(`echo ${request.method} ${request.url}`);
  return {
    jsonBody: {
      method: request.method,
      url: request.url,
      params: request.params,
      query: Object.fromEntries(request.query.entries()),
      headers: {
        range: request.headers.get('range'),
        'x-test': request.headers.get('x-test'),
        'content-type': request.headers.get('content-type'),
      },
      bodyLength: body.length,
      bodySha256: createHash('sha256').update(body).digest('hex'),
      functionName: context.functionName,
    },
  };
}

app.http('echoItem', { methods: ['GET', 'POST', 'PUT'], route: 'items/{id}', handler: echo });
app.http('echoItemLatest', { methods: ['GET'], route: 'items/latest', handler: echo });
app.http('echoTyped', { methods: ['GET'], route: 'typed/{n:int}/{flag:bool?}', handler: echo });
app.http('echoFiles', { methods: ['GET', 'DELETE'], route: 'files/{container}/{*path}', handler: echo });
app.http('echoDefaultRoute', { handler: echo });
app.http('secured', { authLevel: 'function', route: 'secured', handler: echo });
app.http('adminOnly', { authLevel: 'admin', route: 'admin-only', handler: echo });

/** Status, headers and cookies chosen by the handler. */
app.http('teapot', {
  methods: ['GET'],
  route: 'teapot',
  handler: () => ({
    status: 418,
    headers: { 'x-brewed': 'yes', 'content-type': 'text/plain' },
    cookies: [{ name: 'sugar', value: 'two', path: '/', httpOnly: true }],
    body: 'short and stout',
  }),
});

/** Streams `?n=` chunks of 64 KiB, generated lazily (the response never exists in memory at once). */
app.http('stream', {
  methods: ['GET'],
  route: 'stream',
  handler: (request) => {
    const n = Number(request.query.get('n') ?? '16');
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < n; i++) yield new Uint8Array(64 * 1024).fill(i % 256);
    }
    return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: Readable.from(chunks()) };
  },
});

/** Fails: the host answers 500. */
app.http('broken', {
  methods: ['GET'],
  route: 'broken',
  handler: () => {
    throw new Error('deliberate failure');
  },
});

/** Returns nothing: the host answers 204. */
app.http('nothing', {
  methods: ['POST'],
  route: 'nothing',
  handler: () => undefined as unknown as HttpResponseInit,
});

/** Writes the request body to a queue through an output binding and answers 202. */
const enqueue = output.storageQueue({ queueName: '%TEST_HTTP_OUTPUT_QUEUE%', connection: 'AzureWebJobsStorage' });
app.http('enqueue', {
  methods: ['POST'],
  route: 'enqueue',
  extraOutputs: [enqueue],
  handler: async (request, context) => {
    context.extraOutputs.set(enqueue, await request.json());
    return { status: 202 };
  },
});
