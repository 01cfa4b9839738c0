/**
 * Reading the files a command is given: small ones whole (with a size limit checked before reading), large
 * ones only by position, never whole.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { CseError, type CseErrorCode } from '../shared/errors';

/** Reads a whole file that must be small; a larger one fails with `code` before anything is read. */
export async function readSmallFile(path: string, maxBytes: number, what: string, code: CseErrorCode): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new CseError(code, `${what} ${path} is ${size} bytes; the limit is ${maxBytes}`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** Exactly `count` bytes at `offset`; a file that ends early is an integrity problem of the stored content. */
export async function readExactly(handle: FileHandle, offset: number, count: number): Promise<Buffer> {
  const buffer = Buffer.alloc(count);
  let filled = 0;
  while (filled < count) {
    const { bytesRead } = await handle.read(buffer, filled, count - filled, offset + filled);
    if (bytesRead === 0) {
      throw new CseError('IntegrityCheckFailed', 'the encrypted file ended before the expected length (truncated?)');
    }
    filled += bytesRead;
  }
  return buffer;
}

/** UTF-8 text, rejecting invalid byte sequences instead of replacing them with U+FFFD. */
export function decodeUtf8(bytes: Uint8Array, what: string, code: CseErrorCode): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CseError(code, `${what} is not valid UTF-8 text`);
  }
}
