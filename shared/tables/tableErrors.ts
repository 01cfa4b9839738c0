/**
 * Maps Table service failures (RestError from @azure/data-tables) to CseError codes the HTTP functions know.
 * Anything not listed here (network failures, 5xx, authorization) is passed on unchanged: it is not a property
 * of the caller's request.
 */
import { CseError } from '../errors';
import { storageErrorCode, storageStatus } from '../storage/storageErrors';

/** Service error codes meaning "too big" (documented Table service error codes). */
const TOO_LARGE_CODES = new Set([
  'EntityTooLarge',
  'PropertyValueTooLarge',
  'TooManyProperties',
  'RequestBodyTooLarge',
]);

/**
 * Returns the CseError for a service failure of an entity operation, or `e` itself. `what` names the entity
 * for the message, e.g. `entity (PartitionKey "p", RowKey "r") in table t`.
 */
export function mapTableError(e: unknown, what: string): unknown {
  const status = storageStatus(e);
  if (status === undefined) return e;
  // @azure/data-tables puts the service's error code in `details.errorCode` (RestError.code is unset there).
  const code = storageErrorCode(e) ?? '';
  switch (status) {
    case 404:
      return new CseError(
        'EntityNotFound',
        code === 'TableNotFound' ? `${what}: the table does not exist` : `${what} does not exist`,
        { cause: e },
      );
    case 409:
      if (code === 'EntityAlreadyExists' || code === '')
        return new CseError('EntityExists', `${what} already exists`, { cause: e });
      return e;
    case 412:
      return new CseError('ConditionNotMet', `${what} has changed since it was read (its ETag does not match)`, {
        cause: e,
      });
    case 413:
      return new CseError('EntityTooLarge', `${what} is too large for the Table service`, { cause: e });
    case 400:
      if (TOO_LARGE_CODES.has(code)) {
        return new CseError('EntityTooLarge', `${what} breaks a Table service size limit (${code})`, { cause: e });
      }
      return e;
    default:
      return e;
  }
}
