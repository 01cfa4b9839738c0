import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { connectInProcess, duplexPair, findInProcessServer } from '../../../localhost/http/inProcessConnection';

const MiB = 1024 * 1024;

/** A request over an in-process connection to `server`; resolves with the response. */
function request(
  server: http.Server,
  options: http.RequestOptions,
  body?: (req: http.ClientRequest) => void,
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...options, host: 'localhost', createConnection: () => connectInProcess(server) });
    req.once('response', resolve);
    req.once('error', reject);
    if (body) body(req);
    else req.end();
  });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('in-process connection to the library proxy', () => {
  let server: http.Server;
  let port: number;
  let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => undefined;
  before(async () => {
    server = http.createServer((req, res) => handler(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('finds the listening http.Server by the port of its URI, and nothing for other ports or plain net servers', async () => {
    assert.equal(findInProcessServer(`http://localhost:${port}/`), server);
    const plain = net.createServer();
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    try {
      const plainPort = (plain.address() as AddressInfo).port;
      assert.equal(findInProcessServer(`http://localhost:${plainPort}/`), undefined);
      assert.equal(findInProcessServer(`http://localhost:${plainPort === 1 ? 2 : 1}/`), undefined);
    } finally {
      plain.close();
    }
  });

  it('carries a streamed request body and a streamed response byte for byte, with headers and status', async () => {
    const body = Buffer.alloc(3 * MiB + 5);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    handler = (req, res) => {
      void readAll(req).then((got) => {
        res.writeHead(201, { 'x-echo': req.headers['x-test'] ?? '', 'content-length': got.length });
        res.end(got);
      });
    };
    const res = await request(server, { method: 'PUT', path: '/echo', headers: { 'x-test': 'yes' } }, (req) => {
      req.write(body.subarray(0, MiB));
      req.end(body.subarray(MiB));
    });
    assert.equal(res.statusCode, 201);
    assert.equal(res.headers['x-echo'], 'yes');
    assert.deepEqual(await readAll(res), body);
  });

  it('holds a writer while nobody reads, as a socket does (the write does not complete)', async () => {
    let written = 0;
    let finished = false;
    handler = (_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024);
      const pump = (): void => {
        while (written < 64 * MiB) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end(() => (finished = true));
      };
      pump();
    };
    const res = await request(server, { method: 'GET', path: '/big' });
    res.pause();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(written < 8 * MiB, `the server wrote ${written} bytes to a reader that read nothing`);
    assert.equal(finished, false);
    const all = await readAll(res);
    assert.equal(all.length, 64 * MiB);
  });

  it('a response the server finished and closed is still read to its end by a client that was slow to read', async () => {
    let serverClosed = false;
    handler = (_req, res) => {
      const socket = res.socket!;
      socket.once('close', () => (serverClosed = true));
      res.writeHead(200, { 'content-length': String(4 * MiB), connection: 'close' });
      // As a TCP server does once its response is handed over (net.Socket#destroySoon): close the connection.
      res.end(Buffer.alloc(4 * MiB, 1), () => socket.destroy());
    };
    const res = await request(server, { method: 'GET', path: '/slow' });
    res.pause();
    // Let the server run as far as it can: with the reader paused, it can only finish once this side reads.
    await new Promise((resolve) => setTimeout(resolve, 100));
    let received = 0;
    for await (const chunk of res) {
      received += (chunk as Buffer).length;
      if (received < 4 * MiB) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(received, 4 * MiB, 'no byte of the response is lost when the server closes after it');
    assert.equal(serverClosed, true);
  });

  it('a client that goes away mid-request aborts the request on the server (its reads fail)', async () => {
    const outcome = new Promise<string>((resolve) => {
      handler = (req) => {
        readAll(req).then(
          () => resolve('completed'),
          (error: NodeJS.ErrnoException) => resolve(`failed: ${error.code ?? error.message}`),
        );
      };
    });
    const req = http.request({
      method: 'PUT',
      path: '/upload',
      host: 'localhost',
      headers: { 'content-length': String(10 * MiB) },
      createConnection: () => connectInProcess(server),
    });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(MiB));
    await new Promise((resolve) => setTimeout(resolve, 50));
    req.destroy();
    assert.match(await outcome, /^failed/);
  });
});

describe('in-process connection ends', () => {
  it('closing after an orderly end lets the other side read what it has not read yet (a FIN)', async () => {
    const [client, server] = duplexPair();
    server.end(Buffer.from('last words'));
    await once(server, 'finish');
    server.destroy();
    assert.equal(client.destroyed, false);
    assert.equal((await readAll(client)).toString(), 'last words');
  });

  it('closing without an end, or with an error, resets the other side', async () => {
    const [client, server] = duplexPair();
    server.write(Buffer.from('partial'));
    server.destroy();
    assert.equal(client.destroyed, true);
    const [a, b] = duplexPair();
    const failed = once(b, 'error');
    a.on('error', () => undefined); // its own error, reported to whoever destroyed it
    a.destroy(new Error('boom'));
    const [error] = (await failed) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNRESET');
  });

  it('a write waiting for a reader that closes fails with ECONNRESET', async () => {
    const [writer, reader] = duplexPair();
    const failed = once(writer, 'error');
    writer.write(Buffer.alloc(1024 * 1024)); // above the reader's buffer: waits to be read
    reader.end();
    await once(reader, 'finish');
    reader.destroy();
    const [error] = (await failed) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNRESET');
  });
});
