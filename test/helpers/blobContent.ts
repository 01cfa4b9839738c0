/**
 * Deterministic test content, generated on the fly (never held whole in memory): the AES-256-CTR keystream with
 * key SHA-256(seed) and initial counter block 0. Any byte range can be produced directly, and the Python interop
 * script (test/interop/blob_sdk.py) makes the same bytes, so both sides can check each other without exchanging
 * data.
 */
import { createCipheriv, createHash } from 'node:crypto';

const BLOCK = 16;

function keyOf(seed: string): Buffer {
  return createHash('sha256').update(seed).digest();
}

/** The counter block for a 16-byte block index (128-bit big-endian). */
function counterBlock(index: number): Buffer {
  const iv = Buffer.alloc(BLOCK);
  iv.writeBigUInt64BE(BigInt(index), 8);
  return iv;
}

/** Bytes [start, start + length) of the content for `seed`. */
export function contentBytes(seed: string, start: number, length: number): Buffer {
  const first = Math.floor(start / BLOCK);
  const skip = start - first * BLOCK;
  const cipher = createCipheriv('aes-256-ctr', keyOf(seed), counterBlock(first));
  return cipher.update(Buffer.alloc(skip + length)).subarray(skip);
}

/** The content for `seed` as a stream of `chunkSize` chunks. */
export async function* contentStream(seed: string, length: number, chunkSize = 1024 * 1024): AsyncGenerator<Buffer> {
  const cipher = createCipheriv('aes-256-ctr', keyOf(seed), counterBlock(0));
  const zeros = Buffer.alloc(Math.min(chunkSize, Math.max(length, 1)));
  for (let sent = 0; sent < length;) {
    const n = Math.min(chunkSize, length - sent);
    yield cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
    sent += n;
  }
}

/** SHA-256 (hex) of bytes [start, start + length) of the content, computed in bounded memory. */
export function contentSha256(seed: string, start: number, length: number): string {
  const hash = createHash('sha256');
  const step = 4 * 1024 * 1024;
  for (let at = start; at < start + length; at += step) {
    hash.update(contentBytes(seed, at, Math.min(step, start + length - at)));
  }
  return hash.digest('hex');
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads a stream to the end, returning its length and SHA-256 (hex) without keeping it. */
export async function digestStream(stream: AsyncIterable<Uint8Array>): Promise<{ length: number; sha256: string }> {
  const hash = createHash('sha256');
  let length = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    length += chunk.byteLength;
  }
  return { length, sha256: hash.digest('hex') };
}
