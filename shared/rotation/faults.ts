/**
 * Which errors a rotation retries and which it records.
 *
 * A work item must neither crash on one bad object (a key id that is not allowed, metadata that does not parse,
 * a key that cannot unwrap: those are recorded failures of that object) nor record as failed an object that
 * would have worked a moment later (Key Vault throttled, Storage unreachable: those are transient, so the whole
 * work item is retried by the queue, and after maxDequeueCount it reaches the poison queue, where its objects
 * are classified and recorded).
 */
import { CseError } from '../errors';
import { storageErrorCode, storageStatus } from '../storage/storageErrors';

/** Longest failure reason stored (reasons are per object; keep the progress entities small). */
export const MAX_REASON_LENGTH = 300;

export function isTransient(error: unknown): boolean {
  if (error instanceof CseError) return error.code === 'KeyUnavailable';
  if (typeof error !== 'object' || error === null) return false;
  const name = (error as { name?: unknown }).name;
  if (name === 'RestError') {
    const status = storageStatus(error);
    return status === undefined || status === 0 || status === 408 || status === 429 || status >= 500;
  }
  // Socket-level failures that reach us without the SDK's wrapping.
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|ENOTFOUND)$/.test(code);
}

/** A short, key-free description: `Code: message`. */
export function failureReason(error: unknown): string {
  let text: string;
  if (error instanceof CseError) {
    text = `${error.code}: ${error.message}`;
  } else if (typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'RestError') {
    const status = storageStatus(error);
    const code = storageErrorCode(error) ?? 'StorageError';
    text = `${code}: the storage service answered ${status ?? 'nothing'}`;
  } else if (error instanceof Error) {
    text = `${error.name}: ${error.message}`;
  } else {
    text = `Error: ${String(error)}`;
  }
  return truncateReason(text);
}

export function truncateReason(text: string): string {
  return text.length <= MAX_REASON_LENGTH ? text : `${text.slice(0, MAX_REASON_LENGTH - 1)}…`;
}

export function reason(code: string, message: string): string {
  return truncateReason(`${code}: ${message}`);
}
