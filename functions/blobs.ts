/**
 * The blob HTTP API: encrypt on PUT, decrypt (whole or a byte range) on GET, headers on HEAD, DELETE, listing,
 * and metadata replacement that keeps the encryption data. Thin wiring over shared/storage/encryptedBlobStore:
 * this file owns the HTTP semantics (routes, statuses, conditional requests, Range), the store owns the data.
 *
 * Routes (all under /api, function keys required in Azure):
 *   PUT|GET|HEAD|DELETE  blobs/{container}/{*name}
 *   GET                  blobs/{container}?prefix=&continuationToken=&maxResults=
 *   PUT                  metadata/{container}/{*name}
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { CseError, isCseError } from '../shared/errors';
import { getAppServices } from '../shared/appServices';
import { parseRangeHeader, resolveRange, type RangeRequest } from '../shared/crypto/httpRange';
import type { ByteRange, EncryptedBlobStore, OpenedBlob } from '../shared/storage/encryptedBlobStore';
import { normalizeUserMetadata } from '../shared/storage/metadata';
import { evaluatePreconditions, hasPreconditions, rangeStillApplies } from './http/conditional';
import { errorResponse, jsonError } from './http/errors';
import {
  declaredContentLength,
  readContentHeaders,
  readMetadataHeaders,
  readSmallBody,
  representationHeaders,
  routeParam,
} from './http/headers';
import { responseFlow } from './http/responseFlow';
import { responseStream } from './http/responseStream';

/** GET retries when the blob changes between reading its properties and its content. */
const READ_ATTEMPTS = 3;
/** The metadata JSON body can never usefully exceed the 8 KiB metadata limit by much. */
const METADATA_BODY_LIMIT = 64 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// PUT blobs/{container}/{*name}

export async function putBlob(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const container = routeParam(request, 'container');
    const name = routeParam(request, 'name');
    const { blobStore } = await getAppServices();
    // Validate everything that does not need the body before reading a byte of it.
    blobStore.container(container);
    const metadata = readMetadataHeaders(request.headers);
    const contentHeaders = readContentHeaders(request.headers);
    const expectedLength = declaredContentLength(request.headers);
    const body: AsyncIterable<Uint8Array> = (request.body as AsyncIterable<Uint8Array> | null) ?? emptyBody();
    const result = await blobStore.upload(container, name, body, {
      metadata,
      contentHeaders,
      expectedLength,
      conditions: {
        ifMatch: request.headers.get('if-match') ?? undefined,
        ifNoneMatch: request.headers.get('if-none-match') ?? undefined,
      },
    });
    return {
      status: 201,
      headers: { etag: result.etag, 'last-modified': result.lastModified.toUTCString() },
      jsonBody: {
        container: result.container,
        name: result.name,
        etag: result.etag,
        contentLength: result.contentLength,
        keyId: result.keyId,
        protocol: result.protocol,
      },
    };
  } catch (e) {
    return errorResponse(e, context);
  }
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {}

// ---------------------------------------------------------------------------------------------------------------
// GET / HEAD blobs/{container}/{*name}

export async function getBlob(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const container = routeParam(request, 'container');
    const name = routeParam(request, 'name');
    const { blobStore } = await getAppServices();
    for (let attempt = 1; ; attempt++) {
      try {
        return await answerRead(blobStore, request, context, container, name);
      } catch (e) {
        // The blob changed between the reads of one attempt (properties, then content): read it again.
        if (isCseError(e, 'ConditionNotMet') && attempt < READ_ATTEMPTS) continue;
        throw e;
      }
    }
  } catch (e) {
    return errorResponse(e, context);
  }
}

/** One attempt at a GET or HEAD; a request's own failed preconditions are answered, never thrown. */
async function answerRead(
  store: EncryptedBlobStore,
  request: HttpRequest,
  context: InvocationContext,
  container: string,
  name: string,
): Promise<HttpResponseInit> {
  // RFC 9110 defines range handling for GET alone, so HEAD ignores Range.
  const requested = request.method === 'GET' ? parseRangeHeader(request.headers.get('range')) : undefined;
  const opened = await openForResponse(store, request, requested, container, name);
  const plan = planResponse(request, requested, opened.blob);
  if (plan.kind !== 'content' || request.method === 'HEAD') {
    opened.discard();
    return plan.kind === 'content' ? { status: plan.status, headers: plan.headers } : plan.response;
  }
  // Decrypt (and so authenticate) the first region before answering: a failure there is still a clean 500.
  // After the headers are out, a failing region aborts the stream; no unauthenticated byte is ever sent.
  const content = opened.content ?? store.read(opened.blob, plan.range);
  const first = await content.next();
  return {
    status: plan.status,
    headers: plan.headers,
    body: responseStream(resume(first, content), responseFlow(context.invocationId)),
  };
}

/** The blob as opened for one request; `content` is already streaming when the open read it too. */
interface OpenedForResponse {
  readonly blob: OpenedBlob;
  readonly content: AsyncGenerator<Buffer> | undefined;
  discard(): void;
}

/**
 * A GET of the whole blob with no precondition to decide takes everything in one storage request (openWhole);
 * any other request reads the properties first, decides, then reads only what it needs.
 */
async function openForResponse(
  store: EncryptedBlobStore,
  request: HttpRequest,
  requested: RangeRequest | undefined,
  container: string,
  name: string,
): Promise<OpenedForResponse> {
  const whole = request.method === 'GET' && !hasPreconditions(request.headers) && requested === undefined;
  if (whole) return store.openWhole(container, name);
  return { blob: await store.open(container, name), content: undefined, discard: () => undefined };
}

type ResponsePlan =
  | { kind: 'done'; response: HttpResponseInit }
  | { kind: 'content'; status: 200 | 206; headers: Record<string, string>; range: ByteRange | undefined };

/** Preconditions, then the requested Range (undefined for HEAD). */
function planResponse(request: HttpRequest, requested: RangeRequest | undefined, blob: OpenedBlob): ResponsePlan {
  const headers = representationHeaders(blob);
  switch (evaluatePreconditions(request.headers, blob, request.method)) {
    case 'precondition-failed':
      return {
        kind: 'done',
        response: jsonError('ConditionNotMet', 'The blob does not match the request conditions.'),
      };
    case 'not-modified':
      return { kind: 'done', response: { status: 304, headers: notModifiedHeaders(headers) } };
    case 'proceed':
      break;
  }
  const total = blob.contentLength;
  if (requested !== undefined && rangeStillApplies(request.headers, blob)) {
    const resolved = resolveRange(requested, total);
    if (resolved === 'unsatisfiable') {
      return {
        kind: 'done',
        response: jsonError('RangeNotSatisfiable', `The range is outside the blob's ${total} bytes.`, {
          'content-range': `bytes */${total}`,
        }),
      };
    }
    headers['content-range'] = `bytes ${resolved.start}-${resolved.end}/${total}`;
    headers['content-length'] = String(resolved.end - resolved.start + 1);
    return { kind: 'content', status: 206, headers, range: resolved };
  }
  headers['content-length'] = String(total);
  return { kind: 'content', status: 200, headers, range: undefined };
}

/** A 304 carries the validators and caching headers, not the content description. */
function notModifiedHeaders(headers: Record<string, string>): Record<string, string> {
  const keep = ['etag', 'last-modified', 'cache-control', 'content-location', 'expires', 'vary'];
  return Object.fromEntries(Object.entries(headers).filter(([k]) => keep.includes(k)));
}

async function* resume(first: IteratorResult<Buffer>, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (first.done) return;
  yield first.value;
  yield* rest;
}

// ---------------------------------------------------------------------------------------------------------------
// DELETE blobs/{container}/{*name}

export async function deleteBlob(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const { blobStore } = await getAppServices();
    await blobStore.delete(routeParam(request, 'container'), routeParam(request, 'name'), {
      ifMatch: request.headers.get('if-match') ?? undefined,
    });
    return { status: 204 };
  } catch (e) {
    return errorResponse(e, context);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GET blobs/{container}

export async function listBlobs(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const { blobStore } = await getAppServices();
    const query = request.query;
    const maxResultsText = query.get('maxResults');
    if (maxResultsText !== null && !/^\d+$/.test(maxResultsText)) {
      throw new CseError('InvalidRequest', 'maxResults must be an integer from 1 to 5000.');
    }
    const page = await blobStore.list(routeParam(request, 'container'), {
      prefix: query.get('prefix') || undefined,
      continuationToken: query.get('continuationToken') || undefined,
      maxResults: maxResultsText === null ? undefined : Number(maxResultsText),
    });
    return { status: 200, jsonBody: page };
  } catch (e) {
    return errorResponse(e, context);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// PUT metadata/{container}/{*name}

export async function putMetadata(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const container = routeParam(request, 'container');
    const name = routeParam(request, 'name');
    const { blobStore } = await getAppServices();
    blobStore.container(container);
    const text = await readSmallBody(
      request,
      METADATA_BODY_LIMIT,
      () => new CseError('MetadataTooLarge', `The metadata document is larger than ${METADATA_BODY_LIMIT} bytes.`),
    );
    const metadata = normalizeUserMetadata(Object.entries(parseMetadataDocument(text)));
    const result = await blobStore.replaceMetadata(container, name, metadata, {
      ifMatch: request.headers.get('if-match') ?? undefined,
    });
    return { status: 200, headers: { etag: result.etag }, jsonBody: { etag: result.etag } };
  } catch (e) {
    return errorResponse(e, context);
  }
}

function parseMetadataDocument(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CseError('InvalidMetadata', 'The body must be a JSON object of metadata names to string values.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CseError('InvalidMetadata', 'The body must be a JSON object of metadata names to string values.');
  }
  return value as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------------------
// Registration

/** One function per route; the method picks the handler. An empty `{*name}` on GET is the container listing. */
export async function blobRoute(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  switch (request.method) {
    case 'PUT':
      return putBlob(request, context);
    case 'GET':
      return routeParam(request, 'name') === '' ? listBlobs(request, context) : getBlob(request, context);
    case 'HEAD':
      return getBlob(request, context);
    case 'DELETE':
      return deleteBlob(request, context);
    default:
      return jsonError('MethodNotAllowed', `${request.method} is not supported on this route.`, {
        allow: 'GET, HEAD, PUT, DELETE',
      });
  }
}

app.http('blobs', {
  methods: ['GET', 'HEAD', 'PUT', 'DELETE'],
  route: 'blobs/{container}/{*name}',
  authLevel: 'function',
  handler: blobRoute,
});

app.http('blobList', {
  methods: ['GET'],
  route: 'blobs/{container}',
  authLevel: 'function',
  handler: listBlobs,
});

app.http('blobMetadata', {
  methods: ['PUT'],
  route: 'metadata/{container}/{*name}',
  authLevel: 'function',
  handler: putMetadata,
});
