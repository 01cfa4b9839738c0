/**
 * `_ClientEncryptionMetadata1`: the JSON an encrypted entity carries about its content key (FORMAT.md §6.4 for
 * 1.0; docs/TABLE-FORMAT.md for this project's 2.0).
 *
 *   1.0  {"WrappedContentKey":{KeyId,EncryptedKey,Algorithm},
 *         "EncryptionAgent":{"Protocol":"1.0","EncryptionAlgorithm":"AES_CBC_256"},
 *         "ContentEncryptionIV":"<16 bytes>","KeyWrappingMetadata":{...}}
 *   2.0  {"WrappedContentKey":{...wrap("2.0"‖00×5‖CEK)},
 *         "EncryptionAgent":{"Protocol":"2.0","EncryptionAlgorithm":"AES_GCM_256"},"KeyWrappingMetadata":{...}}
 *
 * 1.0 documents are read by the shared encryption-data reader (the table document is the blob document without
 * EncryptionMode); 2.0 table documents have no EncryptedRegionInfo (a property is one GCM message, not a stream
 * of regions), so they are read here. Reading is tolerant in the same ways (member order, unknown members, null
 * as absent); anything the format needs is checked and reported as CseError 'InvalidEncryptionData' or
 * 'UnsupportedProtocol'.
 *
 * `KeyWrappingMetadata` is kept exactly as read (absent stays absent): for 1.0 its absence or an
 * `EncryptionLibrary` containing "Java" selects the legacy Java layout (FORMAT.md §6.5), so a re-wrap must not
 * change it.
 */
import { CseError } from '../errors';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';
import {
  CONTENT_ALGORITHM,
  encryptionDataFromJson,
  serializeEncryptionData,
  type WrappedContentKey,
} from '../crypto/encryptionData';
import { unwrapContentKey, wrapContentKey } from '../crypto/keyWrapPayload';
import { decodeBase64Strict } from '../crypto/strictBase64';

export type TableProtocol = '1.0' | '2.0';
export const TABLE_PROTOCOLS: readonly TableProtocol[] = ['1.0', '2.0'];

export function isTableProtocol(value: unknown): value is TableProtocol {
  return value === '1.0' || value === '2.0';
}

/** Written in `KeyWrappingMetadata.EncryptionLibrary` (never containing "Java": that would select the Java layout). */
export const TABLE_ENCRYPTION_LIBRARY = 'azure-cse-functions';

interface TableKeyMetadataCommon {
  readonly wrappedContentKey: WrappedContentKey;
  /** String members of `KeyWrappingMetadata`; undefined when the member is absent or null. */
  readonly keyWrappingMetadata: Readonly<Record<string, string>> | undefined;
}

/** Legacy AES-256-CBC entity (read; written only when configured). */
export interface TableKeyMetadataV1 extends TableKeyMetadataCommon {
  readonly protocol: '1.0';
  /** The 16-byte entity IV from which each property IV is derived. */
  readonly entityIv: Buffer;
}

/** This project's authenticated AES-256-GCM entity format. */
export interface TableKeyMetadataV2 extends TableKeyMetadataCommon {
  readonly protocol: '2.0';
}

export type TableKeyMetadata = TableKeyMetadataV1 | TableKeyMetadataV2;

// ---------------------------------------------------------------------------------------------------------------
// Reading

export function parseTableKeyMetadata(json: string): TableKeyMetadata {
  if (typeof json !== 'string') invalid('_ClientEncryptionMetadata1 must be a string property');
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    invalid('_ClientEncryptionMetadata1 is not valid JSON');
  }
  const obj = requireObject(doc, '_ClientEncryptionMetadata1');
  const agent = requireObject(obj['EncryptionAgent'], 'EncryptionAgent');
  const protocol = agent['Protocol'];
  if (protocol === '1.0') {
    const data = encryptionDataFromJson(doc);
    if (data.protocol !== '1.0') invalid('EncryptionAgent.Protocol changed while reading'); // unreachable
    return {
      protocol: '1.0',
      wrappedContentKey: data.wrappedContentKey,
      entityIv: data.contentEncryptionIV,
      keyWrappingMetadata: data.keyWrappingMetadata,
    };
  }
  if (protocol === '2.0') return readV2(obj, agent);
  if (typeof protocol !== 'string' || protocol.length === 0) invalid('EncryptionAgent.Protocol is missing');
  throw new CseError(
    'UnsupportedProtocol',
    `table entity encryption protocol ${JSON.stringify(protocol)} is not supported (this library reads 1.0 and 2.0)`,
  );
}

function readV2(doc: Record<string, unknown>, agent: Record<string, unknown>): TableKeyMetadataV2 {
  const algorithm = agent['EncryptionAlgorithm'];
  if (algorithm !== CONTENT_ALGORITHM.v2) {
    throw new CseError(
      'UnsupportedProtocol',
      `table protocol 2.0 requires EncryptionAgent.EncryptionAlgorithm ${CONTENT_ALGORITHM.v2}, got ${JSON.stringify(algorithm)}`,
    );
  }
  const wck = requireObject(doc['WrappedContentKey'], 'WrappedContentKey');
  const keyId = requireString(wck['KeyId'], 'WrappedContentKey.KeyId');
  const algorithmName = requireString(wck['Algorithm'], 'WrappedContentKey.Algorithm');
  const encryptedKey = decodeBase64Strict(requireString(wck['EncryptedKey'], 'WrappedContentKey.EncryptedKey'));
  if (encryptedKey === undefined) invalid('WrappedContentKey.EncryptedKey is not valid base64');
  return {
    protocol: '2.0',
    wrappedContentKey: { keyId, encryptedKey, algorithm: algorithmName },
    keyWrappingMetadata: readKeyWrappingMetadata(doc['KeyWrappingMetadata']),
  };
}

function readKeyWrappingMetadata(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  const obj = requireObject(value, 'KeyWrappingMetadata');
  return Object.fromEntries(Object.entries(obj).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function requireObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined || value === null) invalid(`${what} is missing`);
  if (typeof value !== 'object' || Array.isArray(value)) invalid(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) invalid(`${what} is missing or not a string`);
  return value;
}

function invalid(message: string): never {
  throw new CseError('InvalidEncryptionData', message);
}

/**
 * True when a 1.0 entity was written by legacy Java (or must be read as if it were): property IVs from
 * PartitionKey + RowKey + name, and the name list as `[a, b]` (FORMAT.md §6.5).
 */
export function usesLegacyJavaLayout(metadata: TableKeyMetadata): boolean {
  if (metadata.protocol !== '1.0') return false;
  const kwm = metadata.keyWrappingMetadata;
  return kwm === undefined || (kwm['EncryptionLibrary'] ?? '').includes('Java');
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

/**
 * Compact JSON in the .NET/Java member order (WrappedContentKey, EncryptionAgent, [ContentEncryptionIV],
 * KeyWrappingMetadata), ASCII only. KeyWrappingMetadata is omitted only when it is undefined, which happens
 * only for a re-serialized legacy Java entity (new entities always carry it).
 */
export function serializeTableKeyMetadata(metadata: TableKeyMetadata): string {
  if (metadata.protocol === '1.0') {
    return serializeEncryptionData({
      protocol: '1.0',
      encryptionAlgorithm: CONTENT_ALGORITHM.v1,
      wrappedContentKey: metadata.wrappedContentKey,
      contentEncryptionIV: metadata.entityIv,
      keyWrappingMetadata: metadata.keyWrappingMetadata,
    });
  }
  const wck = metadata.wrappedContentKey;
  const parts = [
    `"WrappedContentKey":{"KeyId":${jsonAscii(wck.keyId)},"EncryptedKey":${jsonAscii(
      wck.encryptedKey.toString('base64'),
    )},"Algorithm":${jsonAscii(wck.algorithm)}}`,
    `"EncryptionAgent":{"Protocol":"2.0","EncryptionAlgorithm":"${CONTENT_ALGORITHM.v2}"}`,
  ];
  if (metadata.keyWrappingMetadata !== undefined) {
    const members = Object.entries(metadata.keyWrappingMetadata).map(([k, v]) => `${jsonAscii(k)}:${jsonAscii(v)}`);
    parts.push(`"KeyWrappingMetadata":{${members.join(',')}}`);
  }
  return `{${parts.join(',')}}`;
}

function jsonAscii(value: string): string {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Key operations

/** Unwraps the entity's content key (32 bytes; the caller zeroes it). Checks the 2.0 prefix for 2.0 entities. */
export function unwrapEntityKey(metadata: TableKeyMetadata, resolver: KeyResolver): Promise<Buffer> {
  return unwrapContentKey(resolver, metadata.wrappedContentKey, metadata.protocol);
}

/**
 * Re-wraps an entity's content key under `newKek`, keeping the protocol, the entity IV (1.0) and
 * KeyWrappingMetadata exactly, so the entity's encrypted properties stay valid and a legacy Java entity stays
 * readable as one. Used by key rotation with readEntityKeyMetadata / writeEntityKeyMetadata.
 */
export async function rewrapTableKeyMetadata(
  metadata: TableKeyMetadata,
  resolver: KeyResolver,
  newKek: KeyEncryptionKey,
): Promise<TableKeyMetadata> {
  const cek = await unwrapEntityKey(metadata, resolver);
  try {
    const wrappedContentKey = await wrapContentKey(newKek, cek, metadata.protocol);
    return { ...metadata, wrappedContentKey };
  } finally {
    cek.fill(0);
  }
}
