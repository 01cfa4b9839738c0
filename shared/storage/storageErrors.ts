/**
 * Translation of Azure Storage service errors (RestError from @azure/storage-blob) into CseErrors, so callers
 * (HTTP functions, workers, CLI) deal with one error type. Errors that are not a known storage condition are
 * returned unchanged: they are faults, not answers.
 */
import { CseError } from '../errors';

interface StorageErrorShape {
  statusCode?: number;
  code?: string;
  details?: { errorCode?: string };
}

/** The service's error code: from the body (`code`) or, for bodiless HEAD responses, `x-ms-error-code`. */
export function storageErrorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const shaped = e as StorageErrorShape;
  return shaped.details?.errorCode ?? shaped.code;
}

export function storageStatus(e: unknown): number | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const status = (e as StorageErrorShape).statusCode;
  return typeof status === 'number' ? status : undefined;
}

export function isStorageNotFound(e: unknown): boolean {
  return storageStatus(e) === 404;
}

export function isConditionFailure(e: unknown): boolean {
  return storageStatus(e) === 412 || storageErrorCode(e) === 'ConditionNotMet';
}

/**
 * Maps a storage error raised while working on `container/name` to the CseError a caller should see; other
 * errors are returned as they are.
 */
export function toCseError(e: unknown, container: string, name?: string): unknown {
  if (e instanceof CseError) return e;
  const status = storageStatus(e);
  const code = storageErrorCode(e);
  const what = name === undefined ? `Container "${container}"` : `Blob "${name}" in container "${container}"`;
  if (status === 404) {
    return new CseError('BlobNotFound', `${what} does not exist.`, { cause: e });
  }
  if (code === 'BlobAlreadyExists') {
    return new CseError('BlobExists', `${what} already exists.`, { cause: e });
  }
  if (status === 412) {
    return new CseError('ConditionNotMet', `${what} does not match the request's condition.`, { cause: e });
  }
  return e;
}
