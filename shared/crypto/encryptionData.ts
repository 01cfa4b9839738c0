/**
 * The `encryptiondata` document: the JSON the .NET, Java and Python SDKs store beside encrypted content (blob
 * metadata entry `encryptiondata`, the `EncryptionData` member of a queue envelope). See docs/FORMAT.md.
 *
 * Reading is tolerant the way the SDKs are (any member order, unknown members ignored, `null` means absent,
 * JSON escapes such as .NET's `\u002B`), but every member the format needs is checked, so a malformed document
 * fails here with a CseError naming the member instead of failing later as a confusing crypto error.
 * Writing is canonical: compact JSON in .NET/Java member order, ASCII only (the value travels in an HTTP header).
 */
import { CseError } from '../errors';
import { decodeBase64Strict } from './strictBase64';

/** Name of the blob metadata entry (HTTP header `x-ms-meta-encryptiondata`). Lower case: Python looks it up exactly. */
export const ENCRYPTION_DATA_METADATA_KEY = 'encryptiondata';

export type ContentProtocol = '1.0' | '2.0' | '2.1';
export type V2Protocol = '2.0' | '2.1';

/** `EncryptionAgent.EncryptionAlgorithm` per protocol (Java rejects any other pairing; so do we). */
export const CONTENT_ALGORITHM = { v1: 'AES_CBC_256', v2: 'AES_GCM_256' } as const;

/** `EncryptionMode` written for blobs. Queue envelopes written by Python omit it. */
export const FULL_BLOB = 'FullBlob';

/** `WrappedContentKey`: the content key wrapped by a key-encryption key. */
export interface WrappedContentKey {
  /** Id of the key-encryption key (untrusted when read: it goes to a resolver). */
  readonly keyId: string;
  /** The wrapped bytes (v1: wrap(CEK); v2: wrap("2.0"‖00×5‖CEK)), decoded from base64. */
  readonly encryptedKey: Buffer;
  /** Wrap algorithm name exactly as stored (e.g. A256KW, RSA-OAEP, RSA-OAEP-256); opaque to this module. */
  readonly algorithm: string;
}

interface EncryptionDataCommon {
  /** `"FullBlob"` for blobs; undefined when absent (Python queue envelopes) or null. */
  readonly encryptionMode?: string | undefined;
  readonly wrappedContentKey: WrappedContentKey;
  /** `KeyWrappingMetadata` (string members only); undefined when absent. */
  readonly keyWrappingMetadata?: Readonly<Record<string, string>> | undefined;
}

/** Legacy AES-256-CBC content (read only). */
export interface EncryptionDataV1 extends EncryptionDataCommon {
  readonly protocol: '1.0';
  readonly encryptionAlgorithm: typeof CONTENT_ALGORITHM.v1;
  /** 16-byte CBC IV. */
  readonly contentEncryptionIV: Buffer;
}

/** AES-256-GCM in regions of `dataLength` plaintext bytes, each stored as nonce ‖ ciphertext ‖ 16-byte tag. */
export interface EncryptionDataV2 extends EncryptionDataCommon {
  readonly protocol: V2Protocol;
  readonly encryptionAlgorithm: typeof CONTENT_ALGORITHM.v2;
  readonly encryptedRegionInfo: {
    /** Plaintext bytes per region (4 MiB for 2.0; writer-chosen for 2.1). A positive safe integer. */
    readonly dataLength: number;
    /** Always 12 (the only value any SDK writes; other values are rejected). */
    readonly nonceLength: number;
  };
}

/** Discriminated on `protocol`. */
export type EncryptionData = EncryptionDataV1 | EncryptionDataV2;

/** The only nonce length accepted (all SDKs write 12, the GCM-recommended size). */
export const GCM_NONCE_LENGTH = 12;

// ---------------------------------------------------------------------------------------------------------------
// Reading

/** Parses the JSON text of an encryption-data document. */
export function parseEncryptionData(json: string): EncryptionData {
  if (typeof json !== 'string') invalid('the encryption data must be a JSON string');
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    // V8's message quotes the input; the document holds no secrets, but keep messages short and uniform.
    invalid('the encryption data is not valid JSON');
  }
  return encryptionDataFromJson(value);
}

/** Validates an already-parsed document (e.g. the `EncryptionData` object inside a queue envelope). */
export function encryptionDataFromJson(value: unknown): EncryptionData {
  const doc = requireObject(value, 'the encryption data');
  const agent = requireObject(doc['EncryptionAgent'], 'EncryptionAgent');
  const protocol = requireString(agent['Protocol'], 'EncryptionAgent.Protocol');
  const algorithm = requireString(agent['EncryptionAlgorithm'], 'EncryptionAgent.EncryptionAlgorithm');
  const common = {
    encryptionMode: optionalString(doc['EncryptionMode'], 'EncryptionMode'),
    wrappedContentKey: readWrappedContentKey(doc['WrappedContentKey']),
    keyWrappingMetadata: readKeyWrappingMetadata(doc['KeyWrappingMetadata']),
  };

  switch (protocol) {
    case '1.0': {
      requireAlgorithm(protocol, algorithm, CONTENT_ALGORITHM.v1);
      const iv = requireBase64(doc['ContentEncryptionIV'], 'ContentEncryptionIV');
      if (iv.length !== 16) invalid(`ContentEncryptionIV must be 16 bytes, got ${iv.length}`);
      return { ...common, protocol, encryptionAlgorithm: CONTENT_ALGORITHM.v1, contentEncryptionIV: iv };
    }
    case '2.0':
    case '2.1': {
      requireAlgorithm(protocol, algorithm, CONTENT_ALGORITHM.v2);
      const info = requireObject(doc['EncryptedRegionInfo'], 'EncryptedRegionInfo');
      const dataLength = requirePositiveInteger(info['DataLength'], 'EncryptedRegionInfo.DataLength');
      const nonceLength = requirePositiveInteger(info['NonceLength'], 'EncryptedRegionInfo.NonceLength');
      if (nonceLength !== GCM_NONCE_LENGTH) {
        invalid(`EncryptedRegionInfo.NonceLength must be ${GCM_NONCE_LENGTH}, got ${nonceLength}`);
      }
      return {
        ...common,
        protocol,
        encryptionAlgorithm: CONTENT_ALGORITHM.v2,
        encryptedRegionInfo: { dataLength, nonceLength },
      };
    }
    default:
      throw new CseError(
        'UnsupportedProtocol',
        `encryption protocol ${JSON.stringify(protocol)} is not supported (this library reads 1.0, 2.0 and 2.1)`,
      );
  }
}

function readWrappedContentKey(value: unknown): WrappedContentKey {
  const wck = requireObject(value, 'WrappedContentKey');
  const keyId = requireString(wck['KeyId'], 'WrappedContentKey.KeyId');
  const encryptedKey = requireBase64(wck['EncryptedKey'], 'WrappedContentKey.EncryptedKey');
  const algorithm = requireString(wck['Algorithm'], 'WrappedContentKey.Algorithm');
  if (encryptedKey.length === 0) invalid('WrappedContentKey.EncryptedKey is empty');
  return { keyId, encryptedKey, algorithm };
}

function readKeyWrappingMetadata(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  const obj = requireObject(value, 'KeyWrappingMetadata');
  const out: Record<string, string> = {};
  for (const [name, member] of Object.entries(obj)) {
    // Informational only for blobs and queues; keep what is a string, drop the rest rather than fail.
    if (typeof member === 'string') out[name] = member;
  }
  return out;
}

function requireAlgorithm(protocol: string, actual: string, expected: string): void {
  if (actual !== expected) {
    throw new CseError(
      'UnsupportedProtocol',
      `protocol ${protocol} requires EncryptionAgent.EncryptionAlgorithm ${expected}, got ${JSON.stringify(actual)}`,
    );
  }
}

function requireObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined || value === null) invalid(`${what} is missing`);
  if (typeof value !== 'object' || Array.isArray(value)) invalid(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function requireString(value: unknown, what: string): string {
  if (value === undefined || value === null) invalid(`${what} is missing`);
  if (typeof value !== 'string') invalid(`${what} must be a string`);
  if (value.length === 0) invalid(`${what} is empty`);
  return value;
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') invalid(`${what} must be a string`);
  return value;
}

function requireBase64(value: unknown, what: string): Buffer {
  const text = requireString(value, what);
  const bytes = decodeBase64Strict(text);
  if (bytes === undefined) invalid(`${what} is not valid base64`);
  return bytes;
}

function requirePositiveInteger(value: unknown, what: string): number {
  if (value === undefined || value === null) invalid(`${what} is missing`);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    invalid(`${what} must be a positive integer`);
  }
  return value;
}

function invalid(message: string): never {
  throw new CseError('InvalidEncryptionData', message);
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

/**
 * Serializes compactly in the .NET/Java member order: EncryptionMode, WrappedContentKey{KeyId, EncryptedKey,
 * Algorithm}, EncryptionAgent{Protocol, EncryptionAlgorithm}, ContentEncryptionIV | EncryptedRegionInfo{DataLength,
 * NonceLength}, KeyWrappingMetadata. Absent optional members are omitted (never written as null). Non-ASCII
 * characters are escaped as \uXXXX so the result is a valid HTTP header value.
 */
export function serializeEncryptionData(data: EncryptionData): string {
  const parts: string[] = [];
  if (data.encryptionMode !== undefined) parts.push(`"EncryptionMode":${jsonString(data.encryptionMode)}`);
  const wck = data.wrappedContentKey;
  parts.push(
    `"WrappedContentKey":{"KeyId":${jsonString(wck.keyId)},"EncryptedKey":${jsonString(
      wck.encryptedKey.toString('base64'),
    )},"Algorithm":${jsonString(wck.algorithm)}}`,
  );
  parts.push(
    `"EncryptionAgent":{"Protocol":${jsonString(data.protocol)},"EncryptionAlgorithm":${jsonString(
      data.encryptionAlgorithm,
    )}}`,
  );
  if (data.protocol === '1.0') {
    parts.push(`"ContentEncryptionIV":${jsonString(data.contentEncryptionIV.toString('base64'))}`);
  } else {
    const { dataLength, nonceLength } = data.encryptedRegionInfo;
    parts.push(`"EncryptedRegionInfo":{"DataLength":${integer(dataLength)},"NonceLength":${integer(nonceLength)}}`);
  }
  if (data.keyWrappingMetadata !== undefined) {
    const members = Object.entries(data.keyWrappingMetadata).map(([k, v]) => `${jsonString(k)}:${jsonString(v)}`);
    parts.push(`"KeyWrappingMetadata":{${members.join(',')}}`);
  }
  return `{${parts.join(',')}}`;
}

/** JSON string literal restricted to ASCII. */
function jsonString(value: string): string {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function integer(value: number): string {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new CseError('InvalidEncryptionData', 'EncryptedRegionInfo values must be positive integers');
  }
  return String(value);
}
