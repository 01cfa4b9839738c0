/**
 * The v2.0 blob writer (FORMAT.md §2.2, Appendix A): a fresh 32-byte CEK per blob, wrapped as "2.0"‖00×5‖CEK,
 * plaintext cut into 4 MiB regions, region i stored as nonce(i) ‖ AES-256-GCM ciphertext ‖ 16-byte tag, no AAD.
 *
 * The nonce is i as a 12-byte big-endian counter (the Python SDK's scheme), which every current reader's
 * nonce-order check accepts. Encryption is streamed: each input chunk is encrypted as it arrives and only the
 * nonce and tag are added at region boundaries, so memory does not grow with the blob (not even to a region).
 */
import { createCipheriv, createSecretKey, randomBytes, type CipherGCM, type KeyObject } from 'node:crypto';
import { CseError } from '../errors';
import type { KeyEncryptionKey } from '../keys/kek';
import { asBuffer, chunksOf, collect } from './byteChunks';
import {
  CONTENT_ALGORITHM,
  FULL_BLOB,
  GCM_NONCE_LENGTH,
  serializeEncryptionData,
  type EncryptionDataV2,
} from './encryptionData';
import { CEK_LENGTH, wrapContentKey } from './keyWrapPayload';
import { REGION_LENGTH } from './regionMath';

/**
 * `KeyWrappingMetadata.EncryptionLibrary` written by default. Informational for blobs, but table readers treat
 * a value containing "Java" as a legacy Java writer (FORMAT.md §6.5), so it must never say "JavaScript".
 */
export const ENCRYPTION_LIBRARY = 'azure-cse-functions 0.1.0 (Node)';

export interface BlobEncryptionOptions {
  /** The content key to use instead of a random one. Only for known-answer tests: reusing a CEK is unsafe. */
  cek?: Buffer;
  /** Overrides `KeyWrappingMetadata.EncryptionLibrary`. */
  encryptionLibrary?: string;
}

export interface BlobEncryptionSession {
  /** The serialized encryption data, to store as the blob's `encryptiondata` metadata value. */
  readonly metadataValue: string;
  readonly keyId: string;
  readonly protocol: '2.0';
  /**
   * Encrypts the plaintext stream into the stored bytes. Memory stays around one input chunk whatever the size.
   * May be called once per session: a second call would reuse nonces under the same key, so it throws.
   */
  encrypt(plaintext: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer>;
}

/** Creates (or takes) the CEK, wraps it with the KEK and prepares the metadata. */
export async function startBlobEncryption(
  kek: KeyEncryptionKey,
  options: BlobEncryptionOptions = {},
): Promise<BlobEncryptionSession> {
  const cekBytes = options.cek === undefined ? randomBytes(CEK_LENGTH) : Buffer.from(options.cek);
  try {
    if (cekBytes.length !== CEK_LENGTH) {
      throw new CseError('InvalidKey', `a content key is ${CEK_LENGTH} bytes, got ${cekBytes.length}`);
    }
    const wrapped = await wrapContentKey(kek, cekBytes, '2.0');
    const data: EncryptionDataV2 = {
      encryptionMode: FULL_BLOB,
      wrappedContentKey: wrapped,
      protocol: '2.0',
      encryptionAlgorithm: CONTENT_ALGORITHM.v2,
      encryptedRegionInfo: { dataLength: REGION_LENGTH, nonceLength: GCM_NONCE_LENGTH },
      keyWrappingMetadata: { EncryptionLibrary: options.encryptionLibrary ?? ENCRYPTION_LIBRARY },
    };
    return new Session(serializeEncryptionData(data), wrapped.keyId, createSecretKey(cekBytes));
  } finally {
    cekBytes.fill(0);
  }
}

/** Convenience for small in-memory content: the whole ciphertext and the metadata value. */
export async function encryptBlob(
  kek: KeyEncryptionKey,
  plaintext: Uint8Array,
  options: BlobEncryptionOptions = {},
): Promise<{ metadataValue: string; ciphertext: Buffer }> {
  const session = await startBlobEncryption(kek, options);
  return { metadataValue: session.metadataValue, ciphertext: await collect(session.encrypt(chunksOf(plaintext))) };
}

/** Region i's nonce: i as a 96-bit big-endian integer. */
export function regionNonce(region: number): Buffer {
  const nonce = Buffer.alloc(GCM_NONCE_LENGTH);
  nonce.writeBigUInt64BE(BigInt(region), GCM_NONCE_LENGTH - 8);
  return nonce;
}

class Session implements BlobEncryptionSession {
  readonly protocol = '2.0';
  #started = false;

  constructor(
    readonly metadataValue: string,
    readonly keyId: string,
    private readonly cek: KeyObject,
  ) {}

  encrypt(plaintext: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    if (this.#started) throw new Error('BlobEncryptionSession.encrypt may be called only once (nonce reuse)');
    this.#started = true;
    return encryptRegions(this.cek, plaintext, REGION_LENGTH);
  }
}

async function* encryptRegions(
  cek: KeyObject,
  plaintext: AsyncIterable<Uint8Array>,
  regionLength: number,
): AsyncGenerator<Buffer> {
  let region = 0;
  let cipher: CipherGCM | undefined;
  let filled = 0; // plaintext bytes in the current region
  for await (const chunk of plaintext) {
    let rest = asBuffer(chunk);
    while (rest.length > 0) {
      if (cipher === undefined) {
        // A region starts only when it has a byte: empty plaintext gives an empty body, and exactly 4 MiB one region.
        const nonce = regionNonce(region);
        cipher = createCipheriv('aes-256-gcm', cek, nonce);
        yield nonce;
      }
      const take = Math.min(rest.length, regionLength - filled);
      const out = cipher.update(rest.subarray(0, take));
      if (out.length > 0) yield out;
      filled += take;
      rest = rest.subarray(take);
      if (filled === regionLength) {
        yield finish(cipher);
        cipher = undefined;
        filled = 0;
        region++;
      }
    }
  }
  if (cipher !== undefined) yield finish(cipher);
}

function finish(cipher: CipherGCM): Buffer {
  const rest = cipher.final(); // empty for GCM
  const tag = cipher.getAuthTag();
  return rest.length === 0 ? tag : Buffer.concat([rest, tag]);
}
