/**
 * Error responses of the HTTP API: `{"error":{"code","message"}}` with the status fixed for each code. Library
 * failures arrive as CseErrors; anything else is a fault, answered 500 `InternalError` (or 503
 * `StorageUnavailable` when Azure Storage could not be reached) without internal detail, and logged.
 */
import type { HttpResponseInit, InvocationContext } from '@azure/functions';
import { CseError, type CseErrorCode } from '../../shared/errors';
import { storageStatus } from '../../shared/storage/storageErrors';

/** Codes only the HTTP layer produces (they are not library errors). */
export type HttpOnlyErrorCode = 'InternalError' | 'StorageUnavailable' | 'MethodNotAllowed';
export type ApiErrorCode = CseErrorCode | HttpOnlyErrorCode;

/** Status per code. Codes not listed are server-side faults (500). */
export const STATUS_BY_CODE: Readonly<Partial<Record<ApiErrorCode, number>>> = {
  InvalidName: 400,
  ReservedMetadata: 400,
  InvalidMetadata: 400,
  MetadataTooLarge: 400,
  InvalidRequest: 400,
  InvalidRange: 400,
  InvalidEntity: 400,
  PropertyNotEncryptable: 400,
  EntityTooLarge: 400,
  EncryptedPropertyFilter: 400,
  InvalidContinuationToken: 400,
  ContainerNotAllowed: 403,
  BlobNotFound: 404,
  EntityNotFound: 404,
  MethodNotAllowed: 405,
  // The one HTTP form of an unsupported operation is a method (PATCH: merge), so it answers like one (with Allow).
  UnsupportedOperation: 405,
  BlobExists: 409,
  EntityExists: 409,
  NotEncrypted: 409,
  LegacyFormatDisabled: 409,
  KeyNotAllowed: 409,
  KeyNotFound: 409,
  UnsupportedProtocol: 409,
  RegionTooLarge: 409,
  ConditionNotMet: 412,
  RangeNotSatisfiable: 416,
  IntegrityCheckFailed: 500,
  InvalidEncryptionData: 500,
  KeyUnavailable: 503,
  StorageUnavailable: 503,
  TableNotAllowed: 403,
  RotationNotFound: 404,
  RotationRunning: 409,
};

/** The only message an integrity failure ever gets in a response. */
export const INTEGRITY_MESSAGE = 'The stored content failed its integrity check; nothing of it was served.';

/** Seconds a client is told to wait after a 503 when the cause gave no better figure. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

export function statusFor(code: ApiErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500;
}

export function errorBody(code: ApiErrorCode, message: string): { error: { code: ApiErrorCode; message: string } } {
  return { error: { code, message } };
}

export function jsonError(
  code: ApiErrorCode,
  message: string,
  headers: Record<string, string> = {},
  status = statusFor(code),
): HttpResponseInit {
  if (status === 503 && headers['retry-after'] === undefined) {
    headers = { ...headers, 'retry-after': String(DEFAULT_RETRY_AFTER_SECONDS) };
  }
  return { status, headers, jsonBody: errorBody(code, message) };
}

/** The response for any error thrown by a handler. */
export function errorResponse(error: unknown, context?: InvocationContext): HttpResponseInit {
  if (error instanceof CseError) {
    const status = statusFor(error.code);
    if (status >= 500 && error.code !== 'KeyUnavailable') context?.error(`${error.code}: ${error.message}`);
    if (error.code === 'IntegrityCheckFailed') {
      // One fixed message whatever failed (tag, key unwrap, v1 padding): a response that told a padding error
      // from another failure would be the padding oracle of CVE-2022-30187. The detail goes to the log only.
      return jsonError('IntegrityCheckFailed', INTEGRITY_MESSAGE);
    }
    const headers: Record<string, string> = {};
    if (error.code === 'KeyUnavailable') {
      headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS)));
    }
    return jsonError(error.code, error.message, headers, status);
  }
  if (isStorageUnreachable(error)) {
    context?.warn(`Azure Storage unavailable: ${describe(error)}`);
    return jsonError('StorageUnavailable', 'Azure Storage is unavailable; try again later.');
  }
  context?.error(`Unexpected error: ${describe(error)}`);
  return jsonError('InternalError', 'An internal error occurred.');
}

/** A storage request that failed for lack of a service (network error, 5xx after the SDK's retries). */
function isStorageUnreachable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || (error as { name?: string }).name !== 'RestError') return false;
  const status = storageStatus(error);
  return status === undefined || status === 0 || status >= 500;
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
