import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { QueueServiceClient } from '@azure/storage-queue';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { startLocalHost, testApp, type RunningLocalHost } from '../helpers/localHost';

interface Echo {
  method: string;
  url: string;
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string | null>;
  bodyLength: number;
  bodySha256: string;
  functionName: string;
}

let azurite: RunningAzurite;
before(async () => {
  azurite = await startAzurite();
});
after(() => azurite?.stop());

const modes = [
  { name: 'streaming (app.setup enableHttpStream)', stream: true },
  { name: 'buffered (no streaming)', stream: false },
];

for (const mode of modes) {
  describe(`HTTP functions, ${mode.name}`, () => {
    let host: RunningLocalHost;
    const outputQueue = mode.stream ? 'http-out-stream' : 'http-out-buffered';
    before(async () => {
      host = await startLocalHost({
        main: testApp('httpApp'),
        storage: azurite.connectionString,
        env: {
          LOCALHOST_TEST_STREAM: mode.stream ? '1' : '0',
          TEST_HTTP_OUTPUT_QUEUE: outputQueue,
          // Keys are configured on the streaming host only, to see both behaviours.
          ...(mode.stream ? { LOCALHOST_FUNCTION_KEYS: 'key-one, key-two', LOCALHOST_MASTER_KEY: 'master-key' } : {}),
        },
      });
    });
    after(() => host?.stop());

    const echo = async (path: string, init?: RequestInit): Promise<Echo> => {
      const res = await fetch(host.url(path), init);
      assert.equal(res.status, 200, `${path}: ${res.status}`);
      return (await res.json()) as Echo;
    };
    const status = async (path: string, init?: RequestInit): Promise<number> => {
      const res = await fetch(host.url(path), init);
      await res.arrayBuffer();
      return res.status;
    };

    it('routes {param} templates under /api, literal segments first, parameters decoded', async () => {
      const item = await echo('/api/items/42');
      assert.equal(item.functionName, 'echoItem');
      assert.deepEqual(item.params, { id: '42' });
      assert.equal((await echo('/api/items/latest')).functionName, 'echoItemLatest');
      assert.deepEqual((await echo('/api/ITEMS/a%20b')).params, { id: 'a b' }, 'literals are case-insensitive');
      assert.equal((await echo('/api/echoDefaultRoute')).functionName, 'echoDefaultRoute', 'default route = name');
    });

    it('routes {*rest} catch-alls, constraints and optional parameters', async () => {
      const file = await echo('/api/files/box/a/b%20c/d.txt');
      assert.deepEqual(file.params, { container: 'box', path: 'a/b c/d.txt' });
      assert.deepEqual((await echo('/api/files/box')).params, { container: 'box', path: '' });
      assert.deepEqual((await echo('/api/typed/12')).params, { n: '12' });
      assert.deepEqual((await echo('/api/typed/12/true')).params, { n: '12', flag: 'true' });
      assert.equal(await status('/api/typed/twelve'), 404, 'int constraint');
      assert.equal(await status('/api/typed/12/maybe'), 404, 'bool constraint');
    });

    it('answers 404 for unknown routes, paths outside the prefix, and methods a function does not accept', async () => {
      assert.equal(await status('/api/nope'), 404);
      assert.equal(await status('/items/42'), 404);
      assert.equal(await status('/api/items/42', { method: 'PATCH' }), 404);
      assert.equal(await status('/api/echoDefaultRoute', { method: 'PUT' }), 404, 'default methods are GET and POST');
      assert.equal((await echo('/api/files/box/x', { method: 'DELETE' })).method, 'DELETE');
    });

    it('passes the query and the request headers (Range included) to the handler', async () => {
      const seen = await echo('/api/items/7?a=1&b=two%20words&b=three', {
        headers: { range: 'bytes=0-9', 'x-test': 'hello' },
      });
      assert.equal(seen.query.a, '1');
      // Repeated names: streaming reads the URL (the echo keeps the last value); without streaming the library
      // takes the host's query map, which joins the values with commas, as the Functions host does.
      assert.equal(seen.query.b, mode.stream ? 'three' : 'two words,three');
      assert.equal(seen.headers.range, 'bytes=0-9');
      assert.equal(seen.headers['x-test'], 'hello');
      assert.match(seen.url, /\/api\/items\/7\?a=1&b=two%20words&b=three$/);
    });

    it('streams a large request body to the handler intact', async () => {
      const body = randomBytes(6 * 1024 * 1024 + 123);
      const seen = await new Promise<Echo>((resolve, reject) => {
        // Chunked upload, written in pieces: the body is never one buffer on the way in.
        const req = httpRequest(host.url('/api/items/upload'), { method: 'PUT' }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Echo));
        });
        req.on('error', reject);
        for (let at = 0; at < body.length; at += 256 * 1024) req.write(body.subarray(at, at + 256 * 1024));
        req.end();
      });
      assert.equal(seen.method, 'PUT');
      assert.equal(seen.bodyLength, body.length);
      assert.equal(seen.bodySha256, createHash('sha256').update(body).digest('hex'));
    });

    it('streams a large response body from the handler', async () => {
      const res = await fetch(host.url('/api/stream?n=160'));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/octet-stream');
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.equal(bytes.length, 160 * 64 * 1024);
      for (const i of [0, 1, 100, 159]) assert.equal(bytes[i * 64 * 1024 + 5], i % 256);
    });

    it('returns the status, headers and cookies the handler chose', async () => {
      const res = await fetch(host.url('/api/teapot'));
      assert.equal(res.status, 418);
      assert.equal(res.headers.get('x-brewed'), 'yes');
      assert.equal(res.headers.get('content-type'), 'text/plain');
      assert.match(res.headers.get('set-cookie') ?? '', /^sugar=two; .*Path=\//);
      assert.match(res.headers.get('set-cookie') ?? '', /HttpOnly/);
      assert.equal(await res.text(), 'short and stout');
    });

    it('answers 500 when the handler throws and 204 when it returns nothing', async () => {
      assert.equal(await status('/api/broken'), 500);
      await host.waitForLog(/Executed 'Functions.broken' \(Failed/);
      assert.equal(await status('/api/nothing', { method: 'POST' }), 204);
    });

    it('sends output-binding messages (base64 JSON) before the response completes', async () => {
      const res = await fetch(host.url('/api/enqueue'), { method: 'POST', body: JSON.stringify({ n: 1, s: 'é' }) });
      assert.equal(res.status, 202);
      const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(outputQueue);
      const [message] = (await queue.receiveMessages()).receivedMessageItems;
      assert.ok(message, 'a message was sent');
      assert.deepEqual(JSON.parse(Buffer.from(message.messageText, 'base64').toString('utf8')), { n: 1, s: 'é' });
    });

    if (mode.stream) {
      it('checks function keys when configured: x-functions-key or ?code=, master key for admin', async () => {
        assert.equal(await status('/api/secured'), 401);
        assert.equal(await status('/api/secured', { headers: { 'x-functions-key': 'wrong' } }), 401);
        assert.equal(await status('/api/secured', { headers: { 'x-functions-key': 'key-two' } }), 200);
        assert.equal(await status('/api/secured?code=key-one'), 200);
        assert.equal(await status('/api/secured?code=master-key'), 200);
        assert.equal(await status('/api/admin-only?code=key-one'), 401);
        assert.equal(await status('/api/admin-only', { headers: { 'x-functions-key': 'master-key' } }), 200);
        assert.equal(await status('/api/items/1'), 200, 'anonymous functions need no key');
      });
    } else {
      it('does not check keys when none are configured (as Core Tools)', async () => {
        assert.equal(await status('/api/secured'), 200);
        assert.equal(await status('/api/admin-only'), 200);
      });
    }
  });
}
