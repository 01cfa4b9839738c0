/**
 * A small HTTP client for the blob API tests, on node:http rather than fetch: it sends exactly the headers given
 * (fetch adds and strips some), streams bodies both ways without holding them, and reports a response that ends
 * early (aborted connection, fewer bytes than Content-Length) as an error instead of a short body.
 */
import * as http from 'node:http';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';

export interface HttpResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface DigestResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly length: number;
  readonly sha256: string;
}

export interface RequestOptions {
  readonly headers?: Record<string, string | number>;
  /** A body: bytes, or a stream of chunks (sent chunked unless content-length is given). */
  readonly body?: Uint8Array | string | AsyncIterable<Uint8Array>;
  /** Called with each response chunk (the body is then not collected). */
  readonly onChunk?: (chunk: Buffer) => void;
}

/** The error for a response that did not arrive whole. */
export class IncompleteResponseError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly received: number,
  ) {
    super(message);
  }
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly defaultHeaders: Record<string, string> = {},
  ) {}

  /** Builds `/api/blobs/<container>/<name>` with each name segment percent-encoded. */
  static blobPath(container: string, name: string): string {
    return `/api/blobs/${container}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<HttpResult> {
    return new Promise((resolve, reject) => {
      const url = new URL(path, this.baseUrl);
      const req = http.request(url, { method, headers: { ...this.defaultHeaders, ...options.headers } }, (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (options.onChunk) options.onChunk(chunk);
          else chunks.push(chunk);
        });
        res.on('error', (e) =>
          reject(new IncompleteResponseError(`response broken: ${e.message}`, res.statusCode ?? 0, received)),
        );
        res.on('aborted', () => reject(new IncompleteResponseError('response aborted', res.statusCode ?? 0, received)));
        res.on('end', () => {
          if (!res.complete) {
            reject(new IncompleteResponseError('response incomplete', res.statusCode ?? 0, received));
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      req.on('error', reject);
      const body = options.body;
      if (body === undefined) req.end();
      else if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
      else Readable.from(body).pipe(req);
    });
  }

  /** A request whose response body is digested instead of kept (for large content). */
  async digest(method: string, path: string, options: Omit<RequestOptions, 'onChunk'> = {}): Promise<DigestResult> {
    const hash = createHash('sha256');
    let length = 0;
    const result = await this.request(method, path, {
      ...options,
      onChunk: (chunk) => {
        hash.update(chunk);
        length += chunk.length;
      },
    });
    return { status: result.status, headers: result.headers, length, sha256: hash.digest('hex') };
  }

  async json<T = unknown>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: T }> {
    const result = await this.request(method, path, options);
    const text = result.body.toString('utf8');
    let json: T;
    try {
      json = JSON.parse(text) as T;
    } catch {
      throw new Error(`${method} ${path}: expected JSON, got ${result.status} ${JSON.stringify(text.slice(0, 200))}`);
    }
    return { status: result.status, headers: result.headers, json };
  }
}

/** The `{"error":{"code"}}` of an error response, or undefined. */
export function errorCode(result: HttpResult): string | undefined {
  try {
    return (JSON.parse(result.body.toString('utf8')) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
