/**
 * Ingestion messages: what the queue trigger hands over (the host has already undone the base64 message
 * encoding, and @azure/functions has parsed JSON text into a value) turned into an IngestRequest.
 *
 * Four forms:
 *  1. `{"source":{"container","name"},"target":{"container","name"},"deleteSource":true}`: `target` is optional
 *     (default: the source's name in CSE_INGEST_TARGET_CONTAINER), and so is each of its members (container
 *     default CSE_INGEST_TARGET_CONTAINER, name default the source's name); `deleteSource` defaults to true.
 *  2. `{"content":"<base64>","target":{"container","name"},"contentType":"...","metadata":{...}}`: a small
 *     inline payload; `target.name` is required, `target.container` defaults as above, `contentType` and
 *     `metadata` (user metadata for the target) are optional.
 *  3. An Event Grid `Microsoft.Storage.BlobCreated` event (Event Grid or CloudEvents schema; a one-element
 *     array of one is accepted too): the source is the blob it names, the target that name in
 *     CSE_INGEST_TARGET_CONTAINER, and the source is deleted.
 *  4. Any of the above inside the SDKs' encrypted-message envelope (`{"EncryptedMessageContents",
 *     "EncryptionData"}`, FORMAT.md §5), decrypted with the key resolver. The decrypted text is the JSON of form
 *     1-3, or the base64 of it (what the Python SDK encrypts when its TextBase64EncodePolicy is on).
 *
 * Parsing is strict: an unknown member in forms 1 and 2 is an error rather than something to ignore, because a
 * misspelt `deleteSource` must not silently delete a source that was meant to stay. Every error is a CseError
 * 'InvalidMessage' that says what is wrong (or the envelope's own key/integrity errors).
 */
import { CseError } from '../errors';
import type { KeyResolver } from '../keys/kek';
import { decryptQueueMessage } from '../crypto/queueMessage';
import { normalizeUserMetadata } from '../storage/metadata';
import { isEventLike, parseBlobCreatedEvent } from './eventGrid';
import type { BlobRef, IngestRequest } from './ingestRequest';

export interface IngestMessageOptions {
  /** CSE_INGEST_TARGET_CONTAINER. */
  readonly defaultTargetContainer: string;
  /** Resolves the key id of an encrypted envelope (the app's key ring: only allowed keys). */
  readonly resolver: KeyResolver;
  /** CSE_ALLOW_V1: accept legacy v1.0 (AES-CBC) envelopes. */
  readonly allowV1: boolean;
}

/** Largest inline payload: a queue message is at most 64 KiB, so its base64 content is less than 48 KiB. */
export const MAX_INLINE_CONTENT_LENGTH = 48 * 1024;

const ENVELOPE_MEMBERS = ['EncryptedMessageContents', 'EncryptionData'];
const SOURCE_FORM_MEMBERS = ['source', 'target', 'deleteSource'];
const INLINE_FORM_MEMBERS = ['content', 'target', 'contentType', 'metadata'];

/**
 * Turns the trigger's value (an object, a JSON or base64-of-JSON string, or bytes) into a request, decrypting
 * an envelope if it is one. Throws CseError: InvalidMessage, or the envelope's KeyNotAllowed / KeyNotFound /
 * KeyUnavailable / IntegrityCheckFailed / LegacyFormatDisabled / InvalidEncryptionData / UnsupportedProtocol.
 */
export async function decodeIngestMessage(value: unknown, options: IngestMessageOptions): Promise<IngestRequest> {
  const message = messageObject(value, 'the message');
  if (isEnvelope(message)) {
    const plaintext = await decryptQueueMessage(JSON.stringify(message), options.resolver, {
      allowV1: options.allowV1,
    });
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
    } finally {
      plaintext.fill(0);
    }
    const inner = messageObject(text, 'the decrypted message');
    if (isEnvelope(inner)) {
      throw new CseError(
        'InvalidMessage',
        'the decrypted message is another encrypted envelope (nesting is not supported)',
      );
    }
    return parsePlainMessage(inner, options.defaultTargetContainer, true);
  }
  return parsePlainMessage(message, options.defaultTargetContainer, false);
}

/** Parses forms 1-3 (not an envelope). Throws CseError 'InvalidMessage'. */
export function parsePlainMessage(
  message: Record<string, unknown> | unknown[],
  defaultTargetContainer: string,
  envelope: boolean,
): IngestRequest {
  if (Array.isArray(message)) {
    // Event Grid's own webhook delivery batches events in arrays; a queue destination sends one object per
    // message. An array of exactly one event is accepted; more would make one message's success ambiguous.
    if (message.length !== 1 || !isObject(message[0]) || !isEventLike(message[0])) {
      throw new CseError('InvalidMessage', 'a JSON array message must hold exactly one Event Grid event');
    }
    return fromEvent(message[0], defaultTargetContainer, envelope);
  }
  if (isEventLike(message)) return fromEvent(message, defaultTargetContainer, envelope);
  if ('source' in message) return fromSourceForm(message, defaultTargetContainer, envelope);
  if ('content' in message) return fromInlineForm(message, defaultTargetContainer, envelope);
  throw new CseError(
    'InvalidMessage',
    'not an ingestion message: expected {"source":...}, {"content":...}, an Event Grid BlobCreated event, ' +
      `or an encrypted envelope (members: ${describeMembers(message)})`,
  );
}

function fromEvent(event: Record<string, unknown>, defaultTargetContainer: string, envelope: boolean): IngestRequest {
  const { blob } = parseBlobCreatedEvent(event);
  return {
    kind: 'blob',
    form: 'eventGrid',
    envelope,
    source: blob,
    target: { container: defaultTargetContainer, name: blob.name },
    deleteSource: true,
  };
}

function fromSourceForm(
  message: Record<string, unknown>,
  defaultTargetContainer: string,
  envelope: boolean,
): IngestRequest {
  rejectUnknownMembers(message, SOURCE_FORM_MEMBERS, 'a source message');
  const source = blobRef(message.source, 'source', { container: undefined, name: undefined });
  const target = optionalTarget(message.target, { container: defaultTargetContainer, name: source.name });
  const deleteSource = message.deleteSource;
  if (deleteSource !== undefined && typeof deleteSource !== 'boolean') {
    throw new CseError('InvalidMessage', `deleteSource must be true or false, got ${JSON.stringify(deleteSource)}`);
  }
  return { kind: 'blob', form: 'source', envelope, source, target, deleteSource: deleteSource ?? true };
}

function fromInlineForm(
  message: Record<string, unknown>,
  defaultTargetContainer: string,
  envelope: boolean,
): IngestRequest {
  rejectUnknownMembers(message, INLINE_FORM_MEMBERS, 'an inline message');
  if (message.target === undefined) {
    throw new CseError('InvalidMessage', 'an inline message needs a target with at least a name');
  }
  const target = blobRef(message.target, 'target', { container: defaultTargetContainer, name: undefined });
  const content = decodeContent(message.content);
  const contentType = message.contentType;
  if (contentType !== undefined && (typeof contentType !== 'string' || contentType.trim() === '')) {
    throw new CseError('InvalidMessage', 'contentType must be a non-empty string');
  }
  let metadata: Record<string, string> = {};
  if (message.metadata !== undefined) {
    if (!isObject(message.metadata)) throw new CseError('InvalidMessage', 'metadata must be an object of strings');
    try {
      metadata = normalizeUserMetadata(Object.entries(message.metadata));
    } catch (e) {
      throw new CseError('InvalidMessage', `metadata: ${(e as Error).message}`, { cause: e });
    }
  }
  return { kind: 'inline', form: 'inline', envelope, content, target, contentType, metadata };
}

function decodeContent(value: unknown): Buffer {
  if (typeof value !== 'string') throw new CseError('InvalidMessage', 'content must be a base64 string');
  const compact = value.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
    throw new CseError('InvalidMessage', 'content is not valid base64');
  }
  const bytes = Buffer.from(compact, 'base64');
  if (bytes.length > MAX_INLINE_CONTENT_LENGTH) {
    throw new CseError('InvalidMessage', `inline content is limited to ${MAX_INLINE_CONTENT_LENGTH} bytes`);
  }
  return bytes;
}

/** `{container, name}` with defaults for absent members; both must end up non-empty strings. */
function blobRef(
  value: unknown,
  what: 'source' | 'target',
  defaults: { container: string | undefined; name: string | undefined },
): BlobRef {
  if (!isObject(value)) throw new CseError('InvalidMessage', `${what} must be an object {"container","name"}`);
  rejectUnknownMembers(value, ['container', 'name'], what);
  const container = value.container ?? defaults.container;
  const name = value.name ?? defaults.name;
  if (typeof container !== 'string' || container === '') {
    throw new CseError('InvalidMessage', `${what}.container must be a non-empty string`);
  }
  if (typeof name !== 'string' || name === '') {
    throw new CseError('InvalidMessage', `${what}.name must be a non-empty string`);
  }
  return { container, name };
}

function optionalTarget(value: unknown, defaults: { container: string; name: string }): BlobRef {
  if (value === undefined) return defaults;
  return blobRef(value, 'target', defaults);
}

function rejectUnknownMembers(value: Record<string, unknown>, allowed: readonly string[], what: string): void {
  const unknown = Object.keys(value).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new CseError(
      'InvalidMessage',
      `${what} has unknown member(s) ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')} ` +
        `(allowed: ${allowed.join(', ')})`,
    );
  }
}

function isEnvelope(value: Record<string, unknown> | unknown[]): value is Record<string, unknown> {
  return !Array.isArray(value) && ENVELOPE_MEMBERS.some((m) => m in value);
}

/**
 * The message as a JSON object or array. The trigger gives an object for JSON text; text that is not JSON
 * arrives as a string, which is accepted when it is the base64 of JSON (a producer that encoded twice, or
 * Python's TextBase64EncodePolicy inside an envelope); bytes are read as UTF-8.
 */
function messageObject(value: unknown, what: string): Record<string, unknown> | unknown[] {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    value = decodeUtf8(value, what);
  }
  if (typeof value === 'string') {
    value = parseJsonText(value) ?? parseJsonText(decodeBase64Text(value) ?? '') ?? value;
  }
  if (isObject(value) || Array.isArray(value)) return value;
  const shown = typeof value === 'string' ? `text ${JSON.stringify(value.slice(0, 60))}` : `a JSON ${typeof value}`;
  throw new CseError('InvalidMessage', `${what} is not a JSON object (got ${shown})`);
}

function parseJsonText(text: string): unknown {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return undefined;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return undefined;
  }
}

function decodeBase64Text(text: string): string | undefined {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(compact, 'base64'));
  } catch {
    return undefined;
  }
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CseError('InvalidMessage', `${what} is not UTF-8 text`);
  }
}

function describeMembers(value: Record<string, unknown>): string {
  const keys = Object.keys(value);
  if (keys.length === 0) return 'none';
  return keys
    .slice(0, 8)
    .map((k) => JSON.stringify(k.slice(0, 40)))
    .join(', ');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
