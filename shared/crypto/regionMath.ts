/**
 * Length arithmetic of the two content formats (FORMAT.md §2.1-2.2, §4). Pure functions, no I/O.
 *
 * v2.x: plaintext is cut into regions of D bytes (the last may be shorter); each is stored as
 *   nonce (12) ‖ ciphertext (same length) ‖ tag (16), so a full stored region is D + 28 bytes.
 * v1.0: one AES-CBC stream with PKCS#7 padding, 1…16 bytes of padding, 16-byte blocks.
 */
import { CseError } from '../errors';

export const REGION_LENGTH = 4 * 1024 * 1024;
export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;
/** Bytes a stored v2 region adds to its plaintext. */
export const REGION_OVERHEAD = NONCE_LENGTH + TAG_LENGTH;
export const AES_BLOCK = 16;

// ---------------------------------------------------------------------------------------------------------------
// v2

/** Stored length of a v2 blob with `plainLength` bytes of plaintext: P + ceil(P / D) × 28. */
export function v2CipherLength(plainLength: number, regionLength = REGION_LENGTH): number {
  requireLength(plainLength, 'plaintext length');
  requireRegionLength(regionLength);
  return plainLength + Math.ceil(plainLength / regionLength) * REGION_OVERHEAD;
}

/**
 * Plaintext length of a v2 blob stored in `cipherLength` bytes. Throws CseError 'IntegrityCheckFailed' for a
 * length no v2 writer can produce (a trailing partial region of 28 bytes or less: the blob was cut).
 */
export function v2PlainLength(cipherLength: number, regionLength = REGION_LENGTH): number {
  requireLength(cipherLength, 'stored length');
  requireRegionLength(regionLength);
  const stored = regionLength + REGION_OVERHEAD;
  const fullRegions = Math.floor(cipherLength / stored);
  const rest = cipherLength - fullRegions * stored;
  if (rest !== 0 && rest <= REGION_OVERHEAD) {
    throw new CseError(
      'IntegrityCheckFailed',
      `a stored length of ${cipherLength} bytes is impossible for regions of ${regionLength} bytes (the content was truncated)`,
    );
  }
  return fullRegions * regionLength + (rest === 0 ? 0 : rest - REGION_OVERHEAD);
}

/** Number of regions of a plaintext of `plainLength` bytes. */
export function v2RegionCount(plainLength: number, regionLength = REGION_LENGTH): number {
  return Math.ceil(plainLength / regionLength);
}

export interface V2RegionSpan {
  /** First region (0-based) holding plaintext byte `start`. */
  readonly firstRegion: number;
  /** Last region holding plaintext byte `endInclusive`. */
  readonly lastRegion: number;
  /** Stored offset of the first region. */
  readonly cipherOffset: number;
  /** Stored bytes from cipherOffset to the end of lastRegion if it is a full region (clamp to the blob's size). */
  readonly cipherCount: number;
  /** Plaintext bytes to drop from the start of the first region. */
  readonly skip: number;
}

/** The whole regions covering the plaintext range [start, endInclusive] (FORMAT.md §4.2). */
export function v2RegionSpan(start: number, endInclusive: number, regionLength = REGION_LENGTH): V2RegionSpan {
  requireRange(start, endInclusive);
  requireRegionLength(regionLength);
  const stored = regionLength + REGION_OVERHEAD;
  const firstRegion = Math.floor(start / regionLength);
  const lastRegion = Math.floor(endInclusive / regionLength);
  return {
    firstRegion,
    lastRegion,
    cipherOffset: firstRegion * stored,
    cipherCount: (lastRegion - firstRegion + 1) * stored,
    skip: start - firstRegion * regionLength,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// v1

/** Stored length of a v1 (CBC, PKCS#7) blob: P + 16 − (P mod 16), so always 1…16 bytes more. */
export function v1CipherLength(plainLength: number): number {
  requireLength(plainLength, 'plaintext length');
  return plainLength + AES_BLOCK - (plainLength % AES_BLOCK);
}

/**
 * The possible plaintext lengths of a v1 blob stored in `cipherLength` bytes ([min, max]): the padding is only
 * known after decrypting the last block. Throws 'IntegrityCheckFailed' for a length that is not a positive
 * multiple of 16.
 */
export function v1PlainLengthBounds(cipherLength: number): { min: number; max: number } {
  requireLength(cipherLength, 'stored length');
  if (cipherLength === 0 || cipherLength % AES_BLOCK !== 0) {
    throw new CseError(
      'IntegrityCheckFailed',
      `a stored length of ${cipherLength} bytes is impossible for protocol 1.0`,
    );
  }
  return { min: cipherLength - AES_BLOCK, max: cipherLength - 1 };
}

export interface V1BlockSpan {
  /** Stored offset to read from: one block before the first needed block (its IV), or 0. */
  readonly cipherOffset: number;
  /** Stored bytes to read, up to the end of the block holding endInclusive (clamp to the blob's size). */
  readonly cipherCount: number;
  /** True when cipherOffset is 0, so the IV is ContentEncryptionIV from the metadata, not a stored block. */
  readonly ivFromMetadata: boolean;
  /** Decrypted bytes to drop before the first requested byte. */
  readonly skip: number;
}

/** The blocks covering plaintext [start, endInclusive] plus the preceding IV block (FORMAT.md §4.1). */
export function v1BlockSpan(start: number, endInclusive: number): V1BlockSpan {
  requireRange(start, endInclusive);
  const firstBlockStart = start - (start % AES_BLOCK);
  const lastBlockEnd = endInclusive - (endInclusive % AES_BLOCK) + AES_BLOCK - 1;
  const ivFromMetadata = firstBlockStart === 0;
  const cipherOffset = ivFromMetadata ? 0 : firstBlockStart - AES_BLOCK;
  return {
    cipherOffset,
    cipherCount: lastBlockEnd - cipherOffset + 1,
    ivFromMetadata,
    skip: start - firstBlockStart,
  };
}

// ---------------------------------------------------------------------------------------------------------------

/** Lengths come from this code or from storage (Content-Length); a bad one is a programming error. */
function requireLength(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative integer`);
}

function requireRegionLength(value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError('region length must be a positive integer');
}

/** Ranges reach here from callers (HTTP, CLI) after resolveRange; a bad one is still reported as a CseError. */
function requireRange(start: number, endInclusive: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(endInclusive) || start < 0 || endInclusive < start) {
    throw new CseError('InvalidRange', `invalid plaintext range ${start}-${endInclusive}`);
  }
}
