/**
 * HTTP header handling for the blob API: content headers and `x-ms-meta-*` in (PUT) and out (GET/HEAD), and
 * small request helpers.
 */
import type { HttpRequest } from '@azure/functions';
import { CseError } from '../../shared/errors';
import type { ContentHeaders, OpenedBlob } from '../../shared/storage/encryptedBlobStore';
import { normalizeUserMetadata } from '../../shared/storage/metadata';

export const METADATA_HEADER_PREFIX = 'x-ms-meta-';

/** The content headers stored as blob properties, as sent by the client (absent ones are left unset). */
export function readContentHeaders(headers: Headers): ContentHeaders {
  const get = (name: string): string | undefined => headers.get(name) ?? undefined;
  return {
    contentType: get('content-type'),
    cacheControl: get('cache-control'),
    contentDisposition: get('content-disposition'),
    contentEncoding: get('content-encoding'),
    contentLanguage: get('content-language'),
  };
}

/** `x-ms-meta-*` request headers as validated user metadata (InvalidMetadata, ReservedMetadata). */
export function readMetadataHeaders(headers: Headers): Record<string, string> {
  const entries: [string, string][] = [];
  for (const [name, value] of headers.entries()) {
    if (name.toLowerCase().startsWith(METADATA_HEADER_PREFIX)) {
      entries.push([name.slice(METADATA_HEADER_PREFIX.length), value]);
    }
  }
  return normalizeUserMetadata(entries);
}

/** The representation headers of GET/HEAD/304 responses (without Content-Length / Content-Range). */
export function representationHeaders(blob: OpenedBlob): Record<string, string> {
  const headers: Record<string, string> = {
    etag: blob.etag,
    'last-modified': blob.lastModified.toUTCString(),
    'accept-ranges': 'bytes',
    'content-type': blob.contentHeaders.contentType ?? 'application/octet-stream',
  };
  const optional: [string, string | undefined][] = [
    ['cache-control', blob.contentHeaders.cacheControl],
    ['content-disposition', blob.contentHeaders.contentDisposition],
    ['content-encoding', blob.contentHeaders.contentEncoding],
    ['content-language', blob.contentHeaders.contentLanguage],
  ];
  for (const [name, value] of optional) if (value !== undefined && value !== '') headers[name] = value;
  for (const [name, value] of Object.entries(blob.metadata)) headers[METADATA_HEADER_PREFIX + name] = value;
  return headers;
}

/**
 * The announced body length, for refusing bodies that end early. Undefined when absent (chunked); a malformed
 * value is an error.
 */
export function declaredContentLength(headers: Headers): number | undefined {
  const value = headers.get('content-length');
  if (value === null) return undefined;
  if (!/^\d+$/.test(value.trim())) throw new CseError('InvalidRequest', 'Invalid Content-Length header.');
  return Number(value.trim());
}

/** A route parameter; `{*name}` catch-alls may be absent for an empty remainder. */
export function routeParam(request: HttpRequest, name: string): string {
  return request.params[name] ?? '';
}

/** Reads at most `limit` bytes of the body as UTF-8; a longer body is an error (never buffered unbounded). */
export async function readSmallBody(request: HttpRequest, limit: number, tooLarge: () => Error): Promise<string> {
  const body = request.body;
  if (body === null) return '';
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    length += chunk.byteLength;
    if (length > limit) throw tooLarge();
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
