/**
 * An in-memory connection from the front end to the library's HTTP proxy server, which runs in this same process.
 *
 * The real Functions host is a separate process and reaches the worker's proxy over loopback TCP. Here both ends
 * share one process and one event loop, so TCP only adds cost: every byte of a streamed request or response was
 * written to a kernel socket, read back into a freshly allocated Buffer, and (through V8's external-memory
 * accounting) paid for again in garbage collection. Over this pair the same HTTP/1.1 bytes reach the same
 * `http.Server` of the library, parsed by the same parser; only the transport differs. If the server cannot be
 * found (it always can under this host), the front end falls back to TCP.
 */
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';

/**
 * The listening `http.Server` in this process whose port is the port of `uri`, if any. Node offers no public
 * registry of servers; the list of active handles (what keeps the loop alive) holds every listening server.
 */
export function findInProcessServer(uri: string): http.Server | undefined {
  const port = Number(new URL(uri).port);
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  for (const handle of handles) {
    const candidate = handle as Partial<http.Server>;
    if (typeof candidate.address !== 'function' || typeof candidate.emit !== 'function') continue;
    if (!('maxHeadersCount' in candidate)) continue; // a net.Server that is not an http.Server
    const address = candidate.address();
    if (address !== null && typeof address === 'object' && (address as AddressInfo).port === port) {
      return candidate as http.Server;
    }
  }
  return undefined;
}

/**
 * Opens a new connection to `server`: returns the client end, for `http.request({ createConnection })`; the server
 * end is handed to the server as an accepted socket.
 */
export function connectInProcess(server: http.Server): Duplex {
  const [client, serverEnd] = duplexPair();
  server.emit('connection', serverEnd);
  return client;
}

/**
 * Two connected Duplex streams: what one side writes, the other reads, chunk for chunk (no copy). A write
 * completes when the other side has taken the chunk off its buffer, so a reader that stops reading stops the
 * writer as a socket would. Closing a side after it ended lets the other read to the end (a FIN); closing it
 * otherwise destroys the other side too (a reset).
 * (node 22 has stream.duplexPair, without the destroy propagation; node 20 has none.)
 */
export function duplexPair(): [Duplex, Duplex] {
  const a = new ConnectionEnd();
  const b = new ConnectionEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class ConnectionEnd extends Duplex {
  peer!: ConnectionEnd;
  /** The callback of our peer's pending write, released when we are read from (or failed when we close). */
  #releasePeerWrite: ((error?: Error) => void) | undefined;

  override _read(): void {
    const release = this.#releasePeerWrite;
    this.#releasePeerWrite = undefined;
    release?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.peer.destroyed) {
      callback(connectionReset());
      return;
    }
    if (this.peer.push(chunk)) callback();
    else this.peer.#releasePeerWrite = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A write of the peer's that waits for us to read never completes now: fail it, as on a closed socket.
    const pending = this.#releasePeerWrite;
    this.#releasePeerWrite = undefined;
    pending?.(connectionReset());
    // After an orderly end (everything we wrote was handed over, then the end), closing leaves the peer alone:
    // like a TCP FIN, it still reads what it has not read yet, then its end. Any other close resets it.
    const orderly = error === null && this.writableFinished;
    if (!orderly && !this.peer.destroyed) this.peer.destroy(error ? connectionReset() : undefined);
    callback(error);
  }

  // The bits of net.Socket that http.Server and http.ClientRequest call when present.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

function connectionReset(): Error {
  return Object.assign(new Error('The in-process connection was reset.'), { code: 'ECONNRESET' });
}
