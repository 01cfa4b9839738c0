/**
 * Encrypted queue messages: the `{"EncryptedMessageContents","EncryptionData"}` envelope of the .NET and Python
 * Storage SDKs (docs/FORMAT.md §5).
 *
 * - v2.0 (written and read): the message is ONE region, `nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16)`, base64 in
 *   `EncryptedMessageContents`. We write the nonce .NET writes (`000000000100000000000000`, region counter 1): the
 *   CEK is fresh per message so a fixed nonce is safe, and it is a value every nonce-order validator accepts.
 *   Python writes a random nonce, so readers must accept any nonce (we do).
 * - v1.0 (read only, opt-in): AES-256-CBC/PKCS#7 with `ContentEncryptionIV`. It has no integrity protection; a
 *   padding failure is reported exactly like every other decryption failure.
 *
 * The envelope carries no `EncryptionMode` (Python and legacy .NET omit it; .NET v12 readers do not need it) and
 * exactly these two members: .NET's deserializer treats an envelope with any other member as not encrypted.
 *
 * The plaintext is bytes. .NET encrypts the UTF-8 of the message text; Python applies its message encode policy
 * (e.g. base64) to the text first and encrypts the result. The Functions host's `messageEncoding: base64` is an
 * OUTER encoding of the whole envelope JSON: see envelopeToBase64 / envelopeFromMessageText.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CseError } from '../errors';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';
import {
  CONTENT_ALGORITHM,
  encryptionDataFromJson,
  serializeEncryptionData,
  type EncryptionData,
  type EncryptionDataV1,
  type EncryptionDataV2,
} from './encryptionData';
import { ENCRYPTION_LIBRARY } from './blobEncryption';
import { unwrapContentKey, wrapContentKey } from './keyWrapPayload';

/** The nonce .NET v12 writes for every v2 queue message (FORMAT.md §5.3). */
export const QUEUE_V2_NONCE: Readonly<Buffer> = Buffer.from('000000000100000000000000', 'hex');

/** `EncryptedRegionInfo.DataLength` written in queue envelopes (Python writes the blob region size too). */
export const QUEUE_REGION_DATA_LENGTH = 4 * 1024 * 1024;

/**
 * Largest plaintext we encrypt into one message: the region size the envelope declares. (Azure Storage queues
 * accept at most 64 KiB of message text, envelope included; that limit belongs to the caller that sends it.)
 */
export const MAX_QUEUE_PLAINTEXT_LENGTH = QUEUE_REGION_DATA_LENGTH;

const CEK_LENGTH = 32;
const GCM_TAG_LENGTH = 16;
const CBC_BLOCK_LENGTH = 16;
const ENVELOPE_MEMBERS = ['EncryptedMessageContents', 'EncryptionData'] as const;

/** Written in `KeyWrappingMetadata.EncryptionLibrary` unless the caller names another value (same as for blobs). */
export const DEFAULT_ENCRYPTION_LIBRARY = ENCRYPTION_LIBRARY;

export interface EncryptQueueMessageOptions {
  /** Content key to use instead of a fresh random one (test vectors only: reusing a CEK breaks GCM). */
  readonly cek?: Uint8Array;
  /** Nonce to use instead of QUEUE_V2_NONCE (12 bytes; test vectors only). */
  readonly nonce?: Uint8Array;
  /** `KeyWrappingMetadata.EncryptionLibrary` value. */
  readonly encryptionLibrary?: string;
}

export interface DecryptQueueMessageOptions {
  /** Accept legacy v1.0 (AES-CBC, unauthenticated) envelopes; otherwise they fail with 'LegacyFormatDisabled'. */
  readonly allowV1: boolean;
}

/** A parsed, shape-checked envelope (nothing decrypted yet). */
export interface QueueEnvelope {
  /** The decoded `EncryptedMessageContents` bytes. */
  readonly body: Buffer;
  readonly encryptionData: EncryptionData;
}

/**
 * Encrypts a message (a string is taken as its UTF-8 bytes) as a v2.0 envelope and returns the envelope JSON,
 * compact, in the member order .NET writes.
 */
export async function encryptQueueMessage(
  message: string | Uint8Array,
  kek: KeyEncryptionKey,
  options: EncryptQueueMessageOptions = {},
): Promise<string> {
  const plaintext = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  if (plaintext.length > MAX_QUEUE_PLAINTEXT_LENGTH) {
    throw new CseError(
      'InvalidMessage',
      `a queue message holds at most ${MAX_QUEUE_PLAINTEXT_LENGTH} plaintext bytes (one region), got ${plaintext.length}`,
    );
  }
  const nonce = options.nonce ?? QUEUE_V2_NONCE;
  if (nonce.length !== QUEUE_V2_NONCE.length) {
    throw new CseError('InvalidMessage', `the queue message nonce must be ${QUEUE_V2_NONCE.length} bytes`);
  }
  if (options.cek !== undefined && options.cek.length !== CEK_LENGTH) {
    throw new CseError('InvalidKey', `a content key must be ${CEK_LENGTH} bytes`);
  }
  const cek = options.cek === undefined ? randomBytes(CEK_LENGTH) : Buffer.from(options.cek);
  try {
    const cipher = createCipheriv('aes-256-gcm', cek, nonce, { authTagLength: GCM_TAG_LENGTH });
    const body = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    const wrapped = await wrapContentKey(kek, cek, '2.0');
    const encryptionData: EncryptionDataV2 = {
      wrappedContentKey: { keyId: wrapped.keyId, encryptedKey: wrapped.encryptedKey, algorithm: wrapped.algorithm },
      protocol: '2.0',
      encryptionAlgorithm: CONTENT_ALGORITHM.v2,
      encryptedRegionInfo: { dataLength: QUEUE_REGION_DATA_LENGTH, nonceLength: QUEUE_V2_NONCE.length },
      keyWrappingMetadata: { EncryptionLibrary: options.encryptionLibrary ?? DEFAULT_ENCRYPTION_LIBRARY },
    };
    return `{"EncryptedMessageContents":${JSON.stringify(body.toString('base64'))},"EncryptionData":${serializeEncryptionData(encryptionData)}}`;
  } finally {
    cek.fill(0); // our copy; the caller's buffer (if any) is untouched
  }
}

/**
 * Decrypts an envelope (its JSON text, as the queue trigger or a non-encoding client delivers it) and returns
 * the plaintext bytes. Nothing is returned unless the content authenticated (v2) or decrypted with valid
 * padding (v1, which cannot detect every modification).
 *
 * Errors (CseError): InvalidMessage (not an envelope), InvalidEncryptionData / UnsupportedProtocol (bad
 * `EncryptionData`), LegacyFormatDisabled (v1 without allowV1), the resolver's KeyNotFound / KeyNotAllowed /
 * KeyUnavailable, IntegrityCheckFailed (wrong key, tampered, truncated).
 */
export async function decryptQueueMessage(
  envelope: string,
  resolver: KeyResolver,
  options: DecryptQueueMessageOptions,
): Promise<Buffer> {
  const { body, encryptionData } = parseQueueEnvelope(envelope);
  if (encryptionData.protocol === '1.0' && !options.allowV1) {
    throw new CseError(
      'LegacyFormatDisabled',
      'the queue message uses legacy protocol 1.0 (AES-CBC, unauthenticated); reading it must be enabled explicitly',
    );
  }
  const cek = await unwrapContentKey(resolver, encryptionData.wrappedContentKey, encryptionData.protocol);
  try {
    return encryptionData.protocol === '1.0' ? decryptV1(body, cek, encryptionData) : decryptV2(body, cek);
  } finally {
    cek.fill(0);
  }
}

/** Parses and shape-checks an envelope without decrypting it. Throws CseError 'InvalidMessage' / encryption-data codes. */
export function parseQueueEnvelope(envelope: string): QueueEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(envelope);
  } catch {
    throw new CseError('InvalidMessage', 'the queue message is not JSON, so it is not an encrypted-message envelope');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CseError('InvalidMessage', 'the queue message is not a JSON object, so it is not an envelope');
  }
  const members = value as Record<string, unknown>;
  for (const name of Object.keys(members)) {
    if (!(ENVELOPE_MEMBERS as readonly string[]).includes(name)) {
      throw new CseError(
        'InvalidMessage',
        `the envelope has an unexpected member ${JSON.stringify(name)} (only EncryptedMessageContents and EncryptionData are allowed)`,
      );
    }
  }
  const contents = members['EncryptedMessageContents'];
  if (contents === undefined || contents === null) {
    throw new CseError('InvalidMessage', 'the envelope has no EncryptedMessageContents');
  }
  if (typeof contents !== 'string') {
    throw new CseError('InvalidMessage', 'EncryptedMessageContents must be a base64 string');
  }
  const body = decodeBase64Strict(contents);
  if (body === undefined) throw new CseError('InvalidMessage', 'EncryptedMessageContents is not valid base64');
  if (members['EncryptionData'] === undefined || members['EncryptionData'] === null) {
    throw new CseError('InvalidMessage', 'the envelope has no EncryptionData');
  }
  return { body, encryptionData: encryptionDataFromJson(members['EncryptionData']) };
}

/** True when `text` is an envelope (JSON or the base64 of it) with both members; says nothing about validity. */
export function isEncryptedQueueMessage(text: string): boolean {
  const json = detectEnvelopeJson(text);
  if (json === undefined) return false;
  try {
    const value: unknown = JSON.parse(json);
    return (
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      ENVELOPE_MEMBERS.every((m) => Object.prototype.hasOwnProperty.call(value, m))
    );
  } catch {
    return false;
  }
}

/** The envelope JSON base64-encoded (UTF-8), as the Functions host's default `messageEncoding: base64` expects. */
export function envelopeToBase64(envelope: string): string {
  return Buffer.from(envelope, 'utf8').toString('base64');
}

/**
 * Accepts a message text that is either the envelope JSON or its base64 (the Functions host / .NET
 * `QueueMessageEncoding.Base64` form) and returns the envelope JSON. Throws CseError 'InvalidMessage' otherwise.
 */
export function envelopeFromMessageText(text: string): string {
  const json = detectEnvelopeJson(text);
  if (json === undefined) {
    throw new CseError(
      'InvalidMessage',
      'the message text is neither an envelope JSON object nor the base64 encoding of one',
    );
  }
  return json;
}

/** Which form `text` is in: `'json'`, `'base64'` (of JSON object text), or undefined. */
export function detectEnvelopeEncoding(text: string): 'json' | 'base64' | undefined {
  if (text.trimStart().startsWith('{')) return 'json';
  return decodeBase64Envelope(text) === undefined ? undefined : 'base64';
}

function detectEnvelopeJson(text: string): string | undefined {
  return text.trimStart().startsWith('{') ? text : decodeBase64Envelope(text);
}

/** base64 of UTF-8 JSON object text; line breaks are allowed (files made with `base64` wrap at 76). */
function decodeBase64Envelope(text: string): string | undefined {
  const bytes = decodeBase64Strict(text.replace(/\s+/g, ''));
  if (bytes === undefined || bytes.length === 0) return undefined;
  const decoded = decodeUtf8Strict(bytes);
  return decoded !== undefined && decoded.trimStart().startsWith('{') ? decoded : undefined;
}

/**
 * Strict standard base64 (alphabet, padding, length) in linear time. strictBase64.ts's decodeBase64Strict uses a
 * grouped regular expression that overflows V8's stack on inputs of a few MiB; message bodies can be that large.
 */
function decodeBase64Strict(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

function decodeUtf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function decryptV2(body: Buffer, cek: Buffer): Buffer {
  // The nonce is whatever the writer chose (Python: random; .NET: counter 1): queue nonces are not validated.
  const nonceLength = QUEUE_V2_NONCE.length; // encryptionDataFromJson accepts NonceLength 12 only
  if (body.length < nonceLength + GCM_TAG_LENGTH) {
    throw integrityFailure();
  }
  const nonce = body.subarray(0, nonceLength);
  const tag = body.subarray(body.length - GCM_TAG_LENGTH);
  const ciphertext = body.subarray(nonceLength, body.length - GCM_TAG_LENGTH);
  const decipher = createDecipheriv('aes-256-gcm', cek, nonce, { authTagLength: GCM_TAG_LENGTH });
  decipher.setAuthTag(tag);
  const plaintext = decipher.update(ciphertext);
  try {
    decipher.final(); // verifies the tag; the plaintext above is released only after this
  } catch {
    plaintext.fill(0);
    throw integrityFailure();
  }
  return plaintext;
}

function decryptV1(body: Buffer, cek: Buffer, data: EncryptionDataV1): Buffer {
  // Every failure below, including a padding error, gets the same error: a padding oracle must not exist.
  if (body.length === 0 || body.length % CBC_BLOCK_LENGTH !== 0) throw integrityFailure();
  const decipher = createDecipheriv('aes-256-cbc', cek, data.contentEncryptionIV);
  const head = decipher.update(body);
  try {
    return Buffer.concat([head, decipher.final()]);
  } catch {
    head.fill(0);
    throw integrityFailure();
  }
}

function integrityFailure(): CseError {
  return new CseError(
    'IntegrityCheckFailed',
    'the queue message did not decrypt: wrong key, or the message was modified or truncated',
  );
}
