/**
 * The HTTP side of the host: routes requests under the route prefix to HTTP functions by method and route
 * template, checks function keys when configured, and invokes the function the way the Functions host does.
 *
 * With `app.setup({ enableHttpStream: true })` the library runs its own HTTP server (its `HttpUri` capability);
 * the host forwards the raw request there with `x-ms-invocation-id`, `x-forwarded-host` and `x-forwarded-proto`,
 * and sends the invocation with the headers and route parameters in `triggerMetadata` (the library reads them
 * from there, not from the forwarded request: ECOSYSTEM.md §1.1). The response streams back from the library.
 * The forwarded request travels over an in-memory connection to the library's server, not loopback TCP, since
 * both run in this process (inProcessConnection.ts): the same HTTP, without a kernel round trip per chunk.
 * Without streaming, the body is buffered and request and response travel as RPC `http` data.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { RegisteredFunction, RpcHttpCookie, RpcHttpData, RpcTypedData } from '../coreApi';
import { HostStartError } from '../errors';
import { FunctionInvocationError, type InvocationInit, type InvocationOutcome } from '../invoker';
import { errorMessage, type Logger } from '../log';
import { connectInProcess, findInProcessServer } from './inProcessConnection';
import { isAuthorized, type AuthLevel, type FunctionKeys } from './functionKeys';
import { compareRoutePrecedence, matchRoute, type RouteTemplate } from './routeTemplate';

export interface HttpFunction {
  readonly fn: RegisteredFunction;
  readonly triggerBindingName: string;
  readonly route: RouteTemplate;
  /** Upper-case methods. */
  readonly methods: ReadonlySet<string>;
  readonly authLevel: AuthLevel;
}

export interface HttpFrontEndInit {
  readonly functions: readonly HttpFunction[];
  readonly routePrefix: string;
  readonly keys: FunctionKeys | undefined;
  /** The library's HTTP proxy (`HttpUri` capability) when the app enabled streaming. */
  readonly streamUri: string | undefined;
  readonly invoke: (fn: RegisteredFunction, init: InvocationInit) => Promise<InvocationOutcome>;
  /** Writes the function's non-HTTP outputs; rejects if that fails (the request then fails). */
  readonly completeOutputs: (fn: RegisteredFunction, outcome: InvocationOutcome) => Promise<void>;
  readonly logger: Logger;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) are never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export class HttpFrontEnd {
  readonly #init: HttpFrontEndInit;
  readonly #functions: HttpFunction[];
  readonly #server: http.Server;
  readonly #agent = new http.Agent({ keepAlive: true });
  readonly #sockets = new Set<Socket>();
  readonly #inFlight = new Set<Promise<void>>();
  /** The library's proxy server, reached in memory once found (see inProcessConnection.ts). */
  #streamServer: http.Server | undefined;

  constructor(init: HttpFrontEndInit) {
    this.#init = init;
    this.#functions = [...init.functions].sort((a, b) => compareRoutePrecedence(a.route, b.route));
    this.#server = http.createServer((req, res) => {
      const handled = this.#handle(req, res).catch((error) => {
        init.logger.error(`HTTP ${req.method} ${req.url}: ${errorMessage(error)}`);
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
      this.#inFlight.add(handled);
      void handled.finally(() => this.#inFlight.delete(handled));
    });
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** Listens on `port` (0 picks a free one) on loopback; a port in use is a HostStartError. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        if (error.code === 'EADDRINUSE') {
          reject(new HostStartError(`Port ${port} is already in use on ${host}; set PORT to use another port.`));
        } else if (error.code === 'EACCES') {
          reject(new HostStartError(`Not allowed to listen on port ${port} (${host}); set PORT to another port.`));
        } else reject(error);
      };
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        resolve((this.#server.address() as AddressInfo).port);
      });
    });
  }

  /**
   * Stops accepting requests, lets those in flight finish for up to `graceMs`, then closes every connection.
   */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    if (this.#inFlight.size > 0) {
      const timer = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([Promise.allSettled([...this.#inFlight]), timer]);
    }
    for (const socket of this.#sockets) socket.destroy();
    this.#agent.destroy();
    await closed;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const host = req.headers.host ?? 'localhost';
    const url = new URL(req.url ?? '/', `http://${host}`);
    const path = url.pathname;

    if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
      // The host's landing page ("Your Functions 4.0 app is up and running").
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Your Functions 4.0 app is up and running (local host).\n');
      return;
    }
    if (path === '/admin/host/status' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ state: 'Running' }));
      return;
    }

    const below = stripPrefix(path, this.#init.routePrefix);
    const method = (req.method ?? 'GET').toUpperCase();
    let matched: { fn: HttpFunction; params: Record<string, string> } | undefined;
    if (below !== undefined) {
      for (const candidate of this.#functions) {
        if (!candidate.methods.has(method)) continue;
        const params = matchRoute(candidate.route, below);
        if (params) {
          matched = { fn: candidate, params };
          break;
        }
      }
    }
    if (!matched) {
      // The host answers 404 for an unknown route and for a known route with another method alike.
      req.resume();
      res.writeHead(404).end();
      return;
    }
    const presentedKey = headerValue(req.headers['x-functions-key']) ?? url.searchParams.get('code') ?? undefined;
    if (!isAuthorized(matched.fn.authLevel, presentedKey, this.#init.keys)) {
      req.resume();
      res.writeHead(401).end();
      return;
    }
    if (this.#init.streamUri) await this.#invokeStreaming(req, res, url, matched.fn, matched.params);
    else await this.#invokeBuffered(req, res, url, matched.fn, matched.params);
  }

  async #invokeStreaming(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    target: HttpFunction,
    params: Record<string, string>,
  ): Promise<void> {
    const invocationId = randomUUID();
    const headers = forwardableHeaders(req);
    headers['x-ms-invocation-id'] = invocationId;
    headers['x-forwarded-host'] = url.host;
    headers['x-forwarded-proto'] = 'http';
    const streamUri = this.#init.streamUri!;
    this.#streamServer ??= findInProcessServer(streamUri);
    const server = this.#streamServer;
    const proxyReq = http.request(new URL(url.pathname + url.search, streamUri), {
      method: req.method,
      headers,
      ...(server ? { createConnection: () => connectInProcess(server) } : { agent: this.#agent }),
    });

    // The response streams to the client as the library writes it; it is ended only after the function's other
    // outputs are written, so a client that saw the response can rely on them (and a failure can still abort).
    let proxyResponse: http.IncomingMessage | undefined;
    const responseStarted = new Promise<http.IncomingMessage>((resolve, reject) => {
      proxyReq.once('response', (r) => {
        proxyResponse = r;
        resolve(r);
      });
      proxyReq.once('error', reject);
    });
    responseStarted.catch(() => undefined);
    const bodyRelayed = responseStarted.then(async (r) => {
      res.writeHead(r.statusCode ?? 500, responseHeaders(r));
      await pipeline(r, res, { end: false });
    });
    bodyRelayed.catch(() => undefined);
    proxyReq.on('error', () => undefined); // reported through the promises above; never an uncaught 'error'
    const forwardFailed = new Promise<never>((_resolve, reject) => proxyReq.once('error', reject));
    forwardFailed.catch(() => undefined);
    pipeline(req, proxyReq).catch(() => proxyReq.destroy());
    res.once('close', () => {
      if (!res.writableFinished) proxyReq.destroy(); // the client went away: let the handler's reads fail
    });

    let outcome: InvocationOutcome;
    try {
      const invocation = this.#init.invoke(target.fn, {
        invocationId,
        reason: `This function was programmatically called via the host APIs.`,
        inputData: [{ name: target.triggerBindingName, data: { http: rpcHttp(req, url, params, undefined) } }],
        triggerMetadata: httpTriggerMetadata(req, url, params),
      });
      // If forwarding fails the library never sees the request and would wait forever; fail the request instead.
      outcome = await Promise.race([invocation, forwardFailed]);
      await this.#init.completeOutputs(target.fn, outcome);
    } catch (error) {
      if (!(error instanceof FunctionInvocationError)) {
        this.#init.logger.error(`Functions.${target.fn.metadata.name}: ${errorMessage(error)}`);
      }
      proxyReq.destroy();
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
      return;
    }

    if (!httpOutputSet(target.fn, outcome)) {
      // No HTTP response from the function: the host answers 204 No Content.
      proxyReq.destroy();
      if (!res.headersSent) res.writeHead(204).end();
      return;
    }
    try {
      await bodyRelayed;
      res.end();
    } catch (error) {
      this.#init.logger.error(`Functions.${target.fn.metadata.name}: response stream failed: ${errorMessage(error)}`);
      res.destroy();
    } finally {
      proxyResponse?.resume();
    }
  }

  async #invokeBuffered(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    target: HttpFunction,
    params: Record<string, string>,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    let outcome: InvocationOutcome;
    try {
      outcome = await this.#init.invoke(target.fn, {
        reason: `This function was programmatically called via the host APIs.`,
        inputData: [{ name: target.triggerBindingName, data: { http: rpcHttp(req, url, params, body) } }],
        triggerMetadata: httpTriggerMetadata(req, url, params),
      });
      await this.#init.completeOutputs(target.fn, outcome);
    } catch (error) {
      if (!(error instanceof FunctionInvocationError)) {
        this.#init.logger.error(`Functions.${target.fn.metadata.name}: ${errorMessage(error)}`);
      }
      res.writeHead(500).end();
      return;
    }
    const httpData = httpOutput(target.fn, outcome);
    if (!httpData) {
      res.writeHead(204).end();
      return;
    }
    const status = Number(httpData.statusCode ?? 200);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(httpData.headers ?? {})) {
      if (!HOP_BY_HOP.has(k.toLowerCase())) headers[k] = v;
    }
    const cookies = (httpData.cookies ?? []).map(serializeCookie);
    if (cookies.length > 0) headers['set-cookie'] = cookies;
    const bytes = typedDataBytes(httpData.body);
    headers['content-length'] = String(bytes.length);
    res.writeHead(Number.isInteger(status) ? status : 500, headers);
    res.end(req.method === 'HEAD' ? undefined : bytes);
  }
}

/** Returns the path below the route prefix, or undefined if the path is not under it (case-insensitive). */
function stripPrefix(path: string, prefix: string): string | undefined {
  if (prefix === '') return path;
  const lower = path.toLowerCase();
  const p = `/${prefix.toLowerCase()}`;
  if (lower === p) return '/';
  if (lower.startsWith(`${p}/`)) return path.slice(p.length);
  return undefined;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function forwardableHeaders(req: http.IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    // `Expect: 100-continue` was answered here already; the body follows without it.
    if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'expect') out[name] = value;
  }
  return out;
}

function responseHeaders(r: http.IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(r.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'date' && name !== 'x-ms-invocation-id') {
      out[name] = value;
    }
  }
  return out;
}

/** Request headers as the host sends them: one string per name, repeated values joined. */
function flatHeaders(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function flatQuery(url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of new Set(url.searchParams.keys())) out[key] = url.searchParams.getAll(key).join(',');
  return out;
}

/** The HTTP trigger's binding data: `Headers` and `Query` as JSON, each route parameter as a string. */
function httpTriggerMetadata(
  req: http.IncomingMessage,
  url: URL,
  params: Record<string, string>,
): Record<string, RpcTypedData> {
  const metadata: Record<string, RpcTypedData> = {
    Headers: { json: JSON.stringify(flatHeaders(req)) },
    Query: { json: JSON.stringify(flatQuery(url)) },
  };
  for (const [name, value] of Object.entries(params)) metadata[name] = { string: value };
  return metadata;
}

function rpcHttp(
  req: http.IncomingMessage,
  url: URL,
  params: Record<string, string>,
  body: Buffer | undefined,
): RpcHttpData {
  return {
    method: req.method ?? 'GET',
    url: url.toString(),
    headers: flatHeaders(req),
    query: flatQuery(url),
    params,
    body: body === undefined ? null : { bytes: body },
  };
}

function httpBindingNames(fn: RegisteredFunction): string[] {
  return Object.entries(fn.metadata.bindings)
    .filter(([, b]) => b.direction === 'out' && (b.type ?? '').toLowerCase() === 'http')
    .map(([name]) => name);
}

/** Whether the function produced an HTTP response (its `$return` or an http extra output has a value). */
function httpOutputSet(fn: RegisteredFunction, outcome: InvocationOutcome): boolean {
  const context = outcome.context as { extraOutputs?: { get(name: string): unknown } };
  return httpBindingNames(fn).some((name) =>
    name === '$return'
      ? outcome.result !== undefined && outcome.result !== null
      : context.extraOutputs?.get(name) !== undefined && context.extraOutputs?.get(name) !== null,
  );
}

function httpOutput(fn: RegisteredFunction, outcome: InvocationOutcome): RpcHttpData | undefined {
  for (const name of httpBindingNames(fn)) {
    const data =
      name === '$return'
        ? outcome.response.returnValue
        : outcome.response.outputData?.find((o) => o.name === name)?.data;
    if (data?.http) return data.http;
  }
  return undefined;
}

function typedDataBytes(data: RpcTypedData | null | undefined): Buffer {
  if (!data) return Buffer.alloc(0);
  if (data.bytes) return Buffer.from(data.bytes);
  if (typeof data.string === 'string') return Buffer.from(data.string, 'utf8');
  if (typeof data.json === 'string') return Buffer.from(data.json, 'utf8');
  return Buffer.alloc(0);
}

function serializeCookie(c: RpcHttpCookie): string {
  const parts = [`${c.name ?? ''}=${encodeURIComponent(c.value ?? '')}`];
  if (c.domain?.value) parts.push(`Domain=${c.domain.value}`);
  if (c.path?.value) parts.push(`Path=${c.path.value}`);
  if (c.expires?.value?.seconds) parts.push(`Expires=${new Date(c.expires.value.seconds * 1000).toUTCString()}`);
  if (c.maxAge?.value !== undefined && c.maxAge?.value !== null) parts.push(`Max-Age=${Math.floor(c.maxAge.value)}`);
  if (c.secure?.value) parts.push('Secure');
  if (c.httpOnly?.value) parts.push('HttpOnly');
  if (c.sameSite === 'lax') parts.push('SameSite=Lax');
  else if (c.sameSite === 'strict') parts.push('SameSite=Strict');
  else if (c.sameSite === 'explicitNone') parts.push('SameSite=None');
  return parts.join('; ');
}
