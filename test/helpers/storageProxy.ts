/**
 * A loopback HTTP proxy in front of Azurite's blob endpoint that lets a test decide, request by request, to
 * forward, to answer with an injected error (e.g. 503 ServerBusy, as Azure answers when throttling), or to do
 * something first (e.g. overwrite the blob the request is about to read). Shared Key signatures do not cover
 * the host or port, so requests signed for the proxy's URL are valid at Azurite.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  readonly method: string;
  /** Path and query, e.g. `/devstoreaccount1/landing/a.bin?comp=block&blockid=...`. */
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

export type ProxyDecision = 'forward' | { readonly status: number; readonly code: string };

export type ProxyRule = (request: ProxiedRequest) => ProxyDecision | Promise<ProxyDecision>;

export interface SeenRequest {
  readonly request: ProxiedRequest;
  readonly decision: ProxyDecision;
  /**
   * Response body bytes taken from Azurite for the client so far (grows while a forwarded response streams;
   * stalls when the client stops reading, give or take the socket buffers).
   */
  responseBytes: number;
}

export interface StorageProxy {
  /** The blob endpoint to give the client, e.g. `http://127.0.0.1:41234/devstoreaccount1`. */
  readonly blobEndpoint: string;
  /** Every request seen, with what was done. */
  readonly seen: SeenRequest[];
  rule: ProxyRule;
  close(): Promise<void>;
}

/** `azuriteBlobEndpoint`: e.g. `http://127.0.0.1:40033/devstoreaccount1`. */
export async function startStorageProxy(azuriteBlobEndpoint: string): Promise<StorageProxy> {
  const target = new URL(azuriteBlobEndpoint);
  const seen: StorageProxy['seen'] = [];
  const proxy: { rule: ProxyRule } = { rule: () => 'forward' };
  const server = http.createServer((req, res) => {
    const request: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    void (async () => {
      let decision: ProxyDecision;
      try {
        decision = await proxy.rule(request);
      } catch (error) {
        res.writeHead(500).end(String(error));
        return;
      }
      const entry: SeenRequest = { request, decision, responseBytes: 0 };
      seen.push(entry);
      if (decision !== 'forward') {
        req.resume();
        const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${decision.code}</Code><Message>injected by the test proxy</Message></Error>`;
        res.writeHead(decision.status, {
          'content-type': 'application/xml',
          'x-ms-error-code': decision.code,
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      const upstream = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host },
        },
        (upstreamResponse) => {
          res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
          upstreamResponse.on('data', (chunk: Buffer) => (entry.responseBytes += chunk.length));
          upstreamResponse.pipe(res);
          res.once('close', () => upstreamResponse.destroy()); // the client went away: so does the upstream read
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    blobEndpoint: `http://127.0.0.1:${port}${target.pathname}`,
    seen,
    get rule() {
      return proxy.rule;
    },
    set rule(rule: ProxyRule) {
      proxy.rule = rule;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
