/**
 * The blob reader: v2.0 / v2.1 (AES-256-GCM regions) and, on opt-in only, legacy v1.0 (AES-256-CBC).
 *
 * Usage (whole or ranged; the caller does the I/O):
 *   const d = await openBlobDecryption(metadataValue, resolver, { allowV1 });
 *   const total = await d.plaintextLength(storedLength, readStored);   // v2: arithmetic; v1: reads the last block
 *   const span = resolveRange(request, total);                          // httpRange.ts
 *   const plan = d.planRange(span, storedLength);                       // or d.planWhole(storedLength)
 *   read stored bytes [plan.cipherOffset, plan.cipherOffset + plan.cipherCount) and pass them to
 *   d.decryptRange(stream, plan), which yields the plaintext of the span.
 *
 * v2 guarantees: a region's plaintext is yielded only after its GCM tag verified (the region is held until
 * then, so memory is bounded by DataLength, itself bounded by `maxRegionLength`); regions must carry nonces in
 * one of the SDKs' sequential schemes, in order (FORMAT.md §2.3-2.4), so swapped, repeated or dropped regions
 * fail; a region cut short fails. What no reader can notice: whole regions missing at the END (the format has no
 * region count), see docs/FORMAT.md.
 *
 * v1 has no integrity protection. Every v1 failure (unwrap, length, padding, ...) is reported with the same code
 * and message, so a caller cannot be turned into a padding oracle (CVE-2022-30187).
 */
import { createDecipheriv, createSecretKey, type DecipherGCM, type KeyObject } from 'node:crypto';
import { CseError, isCseError } from '../errors';
import type { KeyResolver } from '../keys/kek';
import { asBuffer, chunksOf, collect } from './byteChunks';
import { parseEncryptionData, type EncryptionDataV1, type EncryptionDataV2, type V2Protocol } from './encryptionData';
import { resolveRange, type RangeRequest } from './httpRange';
import { unwrapContentKey } from './keyWrapPayload';
import {
  AES_BLOCK,
  NONCE_LENGTH,
  REGION_OVERHEAD,
  TAG_LENGTH,
  v1BlockSpan,
  v1PlainLengthBounds,
  v2PlainLength,
  v2RegionSpan,
} from './regionMath';

/** Largest DataLength accepted by default: a region is held in memory until its tag verifies. */
export const DEFAULT_MAX_REGION_LENGTH = 64 * 1024 * 1024;

export interface BlobDecryptionOptions {
  /** Accept legacy protocol 1.0 (unauthenticated AES-CBC). Off unless explicitly enabled. */
  allowV1: boolean;
  /** Largest `EncryptedRegionInfo.DataLength` accepted (default 64 MiB); larger fails with 'RegionTooLarge'. */
  maxRegionLength?: number;
  /**
   * Skip the nonce-order check (the SDKs' AZURE_STORAGE_CSE_V2_ALLOW_MISORDERED_AUTH_REGIONS opt-out), for
   * content from a writer with a non-sequential nonce scheme. Default false.
   */
  allowMisorderedRegions?: boolean;
}

/**
 * One contiguous stored range to read, and what to yield from it. Made by planRange/planWhole of the decryptor
 * that consumes it.
 */
export interface CipherRangePlan {
  /** Stored offset of the first byte to read. */
  readonly cipherOffset: number;
  /** Stored bytes to read (already clamped to the stored length). */
  readonly cipherCount: number;
  /** Plaintext position of the first byte yielded. */
  readonly start: number;
  /** Plaintext bytes yielded; undefined for a whole v1 read, where the padding decides. */
  readonly length: number | undefined;
  /** The stored length the plan was made for. */
  readonly cipherLength: number;
}

export interface BlobDecryptor {
  readonly protocol: '1.0' | '2.0' | '2.1';
  readonly keyId: string;
  /**
   * Plaintext length of content stored in `cipherLength` bytes. v2: arithmetic only (throws
   * 'IntegrityCheckFailed' for an impossible length; readCipher is not called). v1: decrypts the last block
   * to read the padding.
   */
  plaintextLength(
    cipherLength: number,
    readCipher: (offset: number, count: number) => Promise<Buffer>,
  ): Promise<number>;
  /** Plan for the plaintext span [start, end] (inclusive, inside the content: see resolveRange). */
  planRange(range: { start: number; end: number }, cipherLength: number): CipherRangePlan;
  /** Plan for the whole content (also for empty content). */
  planWhole(cipherLength: number): CipherRangePlan;
  /**
   * Decrypts exactly the stored bytes the plan names. Yields only authenticated plaintext (v2), trimmed to the
   * plan; throws CseError 'IntegrityCheckFailed' on any failure, including a stream shorter or longer than planned.
   */
  decryptRange(cipher: AsyncIterable<Uint8Array>, plan: CipherRangePlan): AsyncGenerator<Buffer>;
}

/**
 * Parses the metadata value, checks the protocol is allowed and the region size acceptable (before any key is
 * contacted), resolves the key and unwraps the content key.
 */
export async function openBlobDecryption(
  metadataValue: string,
  resolver: KeyResolver,
  options: BlobDecryptionOptions,
): Promise<BlobDecryptor> {
  const data = parseEncryptionData(metadataValue);
  if (data.protocol === '1.0') {
    if (options.allowV1 !== true) {
      throw new CseError(
        'LegacyFormatDisabled',
        'the content uses the legacy protocol 1.0 (AES-CBC, unauthenticated), which is not enabled',
      );
    }
    return V1Decryptor.open(data, resolver);
  }
  const max = options.maxRegionLength ?? DEFAULT_MAX_REGION_LENGTH;
  if (!Number.isSafeInteger(max) || max <= 0) throw new RangeError('maxRegionLength must be a positive integer');
  const dataLength = data.encryptedRegionInfo.dataLength;
  if (dataLength > max) {
    throw new CseError(
      'RegionTooLarge',
      `EncryptedRegionInfo.DataLength is ${dataLength} bytes, above the maximum of ${max} (a region is held in memory until it authenticates)`,
    );
  }
  return V2Decryptor.open(data, resolver, options.allowMisorderedRegions === true);
}

/**
 * Convenience for content held in memory: decrypts all of it, or a range (RangeNotSatisfiable if the range lies
 * outside the plaintext).
 */
export async function decryptBlob(
  metadataValue: string,
  ciphertext: Uint8Array,
  resolver: KeyResolver,
  options: BlobDecryptionOptions & { range?: RangeRequest },
): Promise<Buffer> {
  const stored = asBuffer(ciphertext);
  const decryptor = await openBlobDecryption(metadataValue, resolver, options);
  let plan: CipherRangePlan;
  if (options.range === undefined) {
    plan = decryptor.planWhole(stored.length);
  } else {
    const total = await decryptor.plaintextLength(stored.length, async (o, n) => stored.subarray(o, o + n));
    const span = resolveRange(options.range, total);
    if (span === 'unsatisfiable') {
      throw new CseError('RangeNotSatisfiable', `the range lies outside the plaintext, which is ${total} bytes`);
    }
    plan = decryptor.planRange(span, stored.length);
  }
  const slice = stored.subarray(plan.cipherOffset, plan.cipherOffset + plan.cipherCount);
  return collect(decryptor.decryptRange(chunksOf(slice), plan));
}

// ---------------------------------------------------------------------------------------------------------------
// v2 / v2.1

type NonceScheme = 'python' | 'java' | 'dotnet';

/** Region i's nonce in each SDK's writer (FORMAT.md §2.3). */
function expectedNonce(scheme: NonceScheme, region: number): Buffer {
  const nonce = Buffer.alloc(NONCE_LENGTH);
  const index = BigInt(region);
  if (scheme === 'python')
    nonce.writeBigUInt64BE(index, 4); // 96-bit big-endian counter from 0
  else if (scheme === 'java')
    nonce.writeBigUInt64BE(index, 0); // 64-bit big-endian in bytes 0-7
  else nonce.writeBigUInt64LE(index + 1n, 4); // 4 zero bytes, then i+1 little-endian
  return nonce;
}

/**
 * The nonce-order check of current .NET and Java readers: keep the schemes consistent with every region seen in
 * this download (several may match at first, e.g. Python and Java at region 0); none left means a region is
 * out of place.
 */
class NonceOrder {
  #candidates: NonceScheme[] = ['python', 'java', 'dotnet'];

  check(region: number, nonce: Buffer): void {
    this.#candidates = this.#candidates.filter((s) => expectedNonce(s, region).equals(nonce));
    if (this.#candidates.length === 0) {
      throw new CseError(
        'IntegrityCheckFailed',
        `out-of-order nonce in region ${region}: regions were reordered, repeated or removed`,
      );
    }
  }
}

class V2Decryptor implements BlobDecryptor {
  readonly keyId: string;
  readonly protocol: V2Protocol;
  readonly #cek: KeyObject;
  readonly #regionLength: number;
  readonly #checkNonces: boolean;

  private constructor(data: EncryptionDataV2, cek: KeyObject, checkNonces: boolean) {
    this.keyId = data.wrappedContentKey.keyId;
    this.protocol = data.protocol;
    this.#cek = cek;
    this.#regionLength = data.encryptedRegionInfo.dataLength;
    this.#checkNonces = checkNonces;
  }

  static async open(data: EncryptionDataV2, resolver: KeyResolver, allowMisordered: boolean): Promise<V2Decryptor> {
    const cek = await unwrapContentKey(resolver, data.wrappedContentKey, data.protocol);
    try {
      return new V2Decryptor(data, createSecretKey(cek), !allowMisordered);
    } finally {
      cek.fill(0);
    }
  }

  async plaintextLength(cipherLength: number): Promise<number> {
    return v2PlainLength(cipherLength, this.#regionLength);
  }

  planWhole(cipherLength: number): CipherRangePlan {
    const total = v2PlainLength(cipherLength, this.#regionLength);
    return { cipherOffset: 0, cipherCount: cipherLength, start: 0, length: total, cipherLength };
  }

  planRange(range: { start: number; end: number }, cipherLength: number): CipherRangePlan {
    const total = v2PlainLength(cipherLength, this.#regionLength);
    requireInside(range, total);
    const span = v2RegionSpan(range.start, range.end, this.#regionLength);
    return {
      cipherOffset: span.cipherOffset,
      cipherCount: Math.min(span.cipherCount, cipherLength - span.cipherOffset),
      start: range.start,
      length: range.end - range.start + 1,
      cipherLength,
    };
  }

  async *decryptRange(cipher: AsyncIterable<Uint8Array>, plan: CipherRangePlan): AsyncGenerator<Buffer> {
    const D = this.#regionLength;
    const stored = D + REGION_OVERHEAD;
    if (plan.cipherOffset % stored !== 0 || plan.length === undefined) {
      throw new RangeError('decryptRange needs a plan made by this decryptor');
    }
    const planEnd = plan.cipherOffset + plan.cipherCount;
    const nonces = this.#checkNonces ? new NonceOrder() : undefined;
    let region = plan.cipherOffset / stored;
    let skip = plan.start - region * D; // plaintext bytes to drop (first region only)
    let remaining = plan.length; // plaintext bytes still to yield

    // Parser state for the current region: nonce ‖ ciphertext ‖ tag.
    let pos = plan.cipherOffset; // stored position of the next byte
    let regionStart = pos;
    let regionEnd = Math.min(regionStart + stored, plan.cipherLength);
    let nonce = Buffer.alloc(0);
    let decipher: DecipherGCM | undefined;
    let tag = Buffer.alloc(0);
    let plain: Buffer[] = []; // unverified plaintext of the current region: never yielded before the tag checks

    for await (const chunk of cipher) {
      let rest = asBuffer(chunk);
      if (pos + rest.length > planEnd) {
        throw new CseError('IntegrityCheckFailed', 'the stored content is longer than its reported length');
      }
      while (rest.length > 0) {
        const tagStart = regionEnd - TAG_LENGTH;
        if (pos < regionStart + NONCE_LENGTH) {
          const take = Math.min(rest.length, regionStart + NONCE_LENGTH - pos);
          nonce = Buffer.concat([nonce, rest.subarray(0, take)]);
          rest = rest.subarray(take);
          pos += take;
          if (nonce.length === NONCE_LENGTH) {
            nonces?.check(region, nonce);
            decipher = createDecipheriv('aes-256-gcm', this.#cek, nonce);
          }
        } else if (pos < tagStart) {
          const take = Math.min(rest.length, tagStart - pos);
          const out = decipher!.update(rest.subarray(0, take));
          if (out.length > 0) plain.push(out);
          rest = rest.subarray(take);
          pos += take;
        } else {
          const take = Math.min(rest.length, regionEnd - pos);
          tag = Buffer.concat([tag, rest.subarray(0, take)]);
          rest = rest.subarray(take);
          pos += take;
          if (pos === regionEnd) {
            verify(decipher!, tag, region);
            // Authenticated: yield the part of this region inside the plan.
            for (const part of trim(plain, skip, remaining)) {
              remaining -= part.length;
              yield part;
            }
            skip = Math.max(0, skip - D);
            region++;
            regionStart = regionEnd;
            regionEnd = Math.min(regionStart + stored, plan.cipherLength);
            nonce = Buffer.alloc(0);
            tag = Buffer.alloc(0);
            plain = [];
            decipher = undefined;
          }
        }
      }
    }
    if (pos !== planEnd) {
      throw new CseError(
        'IntegrityCheckFailed',
        `the stored content ended inside region ${region} (${planEnd - pos} bytes missing)`,
      );
    }
  }
}

function verify(decipher: DecipherGCM, tag: Buffer, region: number): void {
  try {
    decipher.setAuthTag(tag);
    decipher.final();
  } catch {
    throw new CseError(
      'IntegrityCheckFailed',
      `region ${region} failed authentication: the content or its metadata was modified, or the key is wrong`,
    );
  }
}

/** The parts of `parts` after dropping `skip` bytes, up to `max` bytes. */
function trim(parts: Buffer[], skip: number, max: number): Buffer[] {
  const out: Buffer[] = [];
  for (const part of parts) {
    if (max <= 0) break;
    if (skip >= part.length) {
      skip -= part.length;
      continue;
    }
    const piece = part.subarray(skip, skip + max);
    skip = 0;
    max -= piece.length;
    out.push(piece);
  }
  return out;
}

function requireInside(range: { start: number; end: number }, total: number): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= total) {
    throw new CseError('InvalidRange', `range ${start}-${end} is not inside the ${total}-byte plaintext`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// v1.0

/** The one message of every v1 failure: callers must not be able to tell a padding failure from another. */
const V1_FAILURE = 'protocol 1.0 content could not be decrypted (wrong key, or modified or truncated content)';

function v1Failure(): CseError {
  return new CseError('IntegrityCheckFailed', V1_FAILURE);
}

class V1Decryptor implements BlobDecryptor {
  readonly protocol = '1.0';
  readonly keyId: string;
  readonly #cek: KeyObject;
  readonly #iv: Buffer;

  private constructor(data: EncryptionDataV1, cek: KeyObject) {
    this.keyId = data.wrappedContentKey.keyId;
    this.#cek = cek;
    this.#iv = data.contentEncryptionIV;
  }

  static async open(data: EncryptionDataV1, resolver: KeyResolver): Promise<V1Decryptor> {
    let cek: Buffer;
    try {
      cek = await unwrapContentKey(resolver, data.wrappedContentKey, '1.0');
    } catch (e) {
      if (isCseError(e, 'IntegrityCheckFailed')) throw v1Failure();
      throw e; // key not allowed / not found / unavailable: not content-dependent
    }
    try {
      return new V1Decryptor(data, createSecretKey(cek));
    } finally {
      cek.fill(0);
    }
  }

  async plaintextLength(
    cipherLength: number,
    readCipher: (offset: number, count: number) => Promise<Buffer>,
  ): Promise<number> {
    const padding = await this.#paddingLength(cipherLength, readCipher);
    return cipherLength - padding;
  }

  planWhole(cipherLength: number): CipherRangePlan {
    this.#bounds(cipherLength);
    return { cipherOffset: 0, cipherCount: cipherLength, start: 0, length: undefined, cipherLength };
  }

  planRange(range: { start: number; end: number }, cipherLength: number): CipherRangePlan {
    requireInside(range, this.#bounds(cipherLength).max + 1);
    const span = v1BlockSpan(range.start, range.end);
    return {
      cipherOffset: span.cipherOffset,
      cipherCount: span.cipherCount,
      start: range.start,
      length: range.end - range.start + 1,
      cipherLength,
    };
  }

  async *decryptRange(cipher: AsyncIterable<Uint8Array>, plan: CipherRangePlan): AsyncGenerator<Buffer> {
    if (plan.cipherOffset % AES_BLOCK !== 0 || plan.cipherCount % AES_BLOCK !== 0) {
      throw new RangeError('decryptRange needs a plan made by this decryptor');
    }
    const ivFromMetadata = plan.cipherOffset === 0;
    const includesLastBlock = plan.cipherOffset + plan.cipherCount === plan.cipherLength;
    const firstPlain = ivFromMetadata ? 0 : plan.cipherOffset + AES_BLOCK;
    let skip = plan.start - firstPlain;
    let remaining = plan.length ?? Number.MAX_SAFE_INTEGER;
    let pos = plan.cipherOffset;
    let iv = ivFromMetadata ? this.#iv : Buffer.alloc(0);
    let decipher = ivFromMetadata ? this.#decipher(iv, includesLastBlock) : undefined;

    const emit = (out: Buffer): Buffer[] => {
      const parts = trim([out], skip, remaining);
      skip = Math.max(0, skip - out.length);
      for (const p of parts) remaining -= p.length;
      return parts;
    };

    try {
      for await (const chunk of cipher) {
        let rest = asBuffer(chunk);
        pos += rest.length;
        if (pos > plan.cipherOffset + plan.cipherCount) throw v1Failure();
        if (decipher === undefined) {
          // The stored block before the range is the CBC IV of its first block.
          const take = Math.min(rest.length, AES_BLOCK - iv.length);
          iv = Buffer.concat([iv, rest.subarray(0, take)]);
          rest = rest.subarray(take);
          if (iv.length < AES_BLOCK) continue;
          decipher = this.#decipher(iv, includesLastBlock);
        }
        if (rest.length > 0) yield* emit(decipher.update(rest));
      }
      if (decipher === undefined || pos !== plan.cipherOffset + plan.cipherCount) throw v1Failure();
      const last = decipher.final(); // checks the PKCS#7 padding when the last block is included
      yield* emit(last);
    } catch (e) {
      if (e instanceof RangeError) throw e;
      throw v1Failure();
    }
  }

  #decipher(iv: Buffer, unpad: boolean) {
    const decipher = createDecipheriv('aes-256-cbc', this.#cek, iv);
    decipher.setAutoPadding(unpad);
    return decipher;
  }

  #bounds(cipherLength: number): { min: number; max: number } {
    try {
      return v1PlainLengthBounds(cipherLength);
    } catch {
      throw v1Failure();
    }
  }

  /** Decrypts the last block (its IV is the block before it, or ContentEncryptionIV) and validates PKCS#7. */
  async #paddingLength(
    cipherLength: number,
    readCipher: (offset: number, count: number) => Promise<Buffer>,
  ): Promise<number> {
    this.#bounds(cipherLength);
    const singleBlock = cipherLength === AES_BLOCK;
    const offset = singleBlock ? 0 : cipherLength - 2 * AES_BLOCK;
    const tail = await readCipher(offset, cipherLength - offset);
    if (tail.length !== cipherLength - offset) throw v1Failure();
    const iv = singleBlock ? this.#iv : tail.subarray(0, AES_BLOCK);
    const decipher = this.#decipher(iv, false);
    const block = Buffer.concat([decipher.update(tail.subarray(tail.length - AES_BLOCK)), decipher.final()]);
    const pad = block[AES_BLOCK - 1]!;
    // Examine every padding byte whatever the outcome (no early exit on the first bad byte).
    let bad = pad === 0 || pad > AES_BLOCK ? 1 : 0;
    for (let i = 0; i < AES_BLOCK; i++) {
      if (i >= AES_BLOCK - pad && block[i] !== pad) bad |= 1;
    }
    if (bad !== 0) throw v1Failure();
    return pad;
  }
}
