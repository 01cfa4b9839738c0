/**
 * The two ways one table property value is encrypted. Pure functions over bytes; the entity-level logic (which
 * properties, the name list, the metadata) is in entityEncryption.ts.
 *
 * 1.0 (legacy, FORMAT.md §6.3): AES-256-CBC with PKCS#7, IV = SHA-256(entityIV ‖ UTF-8(RowKey + PartitionKey +
 *     name))[0..16) (legacy Java: PartitionKey + RowKey + name). Unauthenticated: a padding error is all a
 *     reader can detect.
 * 2.0 (this project, docs/TABLE-FORMAT.md): nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16), fresh random nonce,
 *     associated data binding the value to its PartitionKey, RowKey and property name (see tableAad).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { CseError } from '../errors';

export const CBC_BLOCK_LENGTH = 16;
export const GCM_NONCE_LENGTH = 12;
export const GCM_TAG_LENGTH = 16;
/** Bytes a 2.0 value adds to its UTF-8 plaintext. */
export const V2_OVERHEAD = GCM_NONCE_LENGTH + GCM_TAG_LENGTH;

/** Label that starts every 2.0 associated-data block: domain separation from any other use of the same CEK. */
export const V2_AAD_LABEL = 'azure-cse-functions/table/2.0';

/** Where a property value sits: what the 2.0 associated data binds and the 1.0 IV derives from. */
export interface PropertyLocation {
  readonly partitionKey: string;
  readonly rowKey: string;
  readonly name: string;
}

// ---------------------------------------------------------------------------------------------------------------
// 1.0

/** Per-property IV (FORMAT.md §6.3). `javaLayout` selects the legacy Java order PartitionKey + RowKey. */
export function v1PropertyIv(entityIv: Uint8Array, at: PropertyLocation, javaLayout: boolean): Buffer {
  const s = javaLayout ? at.partitionKey + at.rowKey + at.name : at.rowKey + at.partitionKey + at.name;
  return createHash('sha256').update(entityIv).update(s, 'utf8').digest().subarray(0, 16);
}

export function v1Encrypt(cek: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-cbc', cek, iv);
  return Buffer.concat([cipher.update(plaintext), cipher.final()]);
}

/** Throws CseError 'IntegrityCheckFailed' on a bad length or bad padding (wrong key, tampered, moved). */
export function v1Decrypt(cek: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array, what: string): Buffer {
  if (ciphertext.length === 0 || ciphertext.length % CBC_BLOCK_LENGTH !== 0) {
    throw new CseError(
      'IntegrityCheckFailed',
      `${what}: ${ciphertext.length} bytes is not a whole number of AES blocks (the value was truncated or is not 1.0 ciphertext)`,
    );
  }
  try {
    const decipher = createDecipheriv('aes-256-cbc', cek, iv);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (e) {
    throw new CseError(
      'IntegrityCheckFailed',
      `${what} did not decrypt (wrong key, or the value was modified or moved from another entity or property)`,
      { cause: e },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 2.0

/**
 * Associated data for a 2.0 value: four length-prefixed fields, each a 4-byte big-endian byte count followed by
 * that many UTF-8 bytes: V2_AAD_LABEL, PartitionKey, RowKey, property name. Length prefixes make the encoding
 * injective (no two different (PK, RK, name) triples give the same bytes, whatever characters they contain).
 */
export function tableAad(at: PropertyLocation): Buffer {
  const fields = [V2_AAD_LABEL, at.partitionKey, at.rowKey, at.name].map((s) => Buffer.from(s, 'utf8'));
  const out = Buffer.alloc(fields.reduce((n, f) => n + 4 + f.length, 0));
  let offset = 0;
  for (const f of fields) {
    offset = out.writeUInt32BE(f.length, offset);
    offset += f.copy(out, offset);
  }
  return out;
}

/** Returns nonce ‖ ciphertext ‖ tag. `nonce` is for tests only (never reuse a nonce with the same key). */
export function v2Encrypt(cek: Uint8Array, at: PropertyLocation, plaintext: Uint8Array, nonce?: Uint8Array): Buffer {
  const iv = nonce === undefined ? randomBytes(GCM_NONCE_LENGTH) : Buffer.from(nonce);
  if (iv.length !== GCM_NONCE_LENGTH) throw new CseError('InvalidKey', `a GCM nonce is ${GCM_NONCE_LENGTH} bytes`);
  const cipher = createCipheriv('aes-256-gcm', cek, iv, { authTagLength: GCM_TAG_LENGTH });
  cipher.setAAD(tableAad(at));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/** Throws CseError 'IntegrityCheckFailed' unless the value authenticates at exactly this location. */
export function v2Decrypt(cek: Uint8Array, at: PropertyLocation, stored: Uint8Array, what: string): Buffer {
  if (stored.length < V2_OVERHEAD) {
    throw new CseError(
      'IntegrityCheckFailed',
      `${what}: ${stored.length} bytes is shorter than a nonce and a tag (${V2_OVERHEAD} bytes); the value was truncated`,
    );
  }
  const buf = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  const nonce = buf.subarray(0, GCM_NONCE_LENGTH);
  const tag = buf.subarray(buf.length - GCM_TAG_LENGTH);
  const body = buf.subarray(GCM_NONCE_LENGTH, buf.length - GCM_TAG_LENGTH);
  try {
    const decipher = createDecipheriv('aes-256-gcm', cek, nonce, { authTagLength: GCM_TAG_LENGTH });
    decipher.setAAD(tableAad(at));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (e) {
    throw new CseError(
      'IntegrityCheckFailed',
      `${what} failed authentication (wrong key, or the value was modified or moved from another entity or property)`,
      { cause: e },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8 decoding of decrypted bytes (invalid UTF-8 means damaged 1.0 data: IntegrityCheckFailed). */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (e) {
    throw new CseError('IntegrityCheckFailed', `${what} did not decrypt to UTF-8 text`, { cause: e });
  }
}
