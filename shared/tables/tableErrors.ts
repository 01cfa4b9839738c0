/**
 * Maps Table service failures (RestError from @azure/data-tables) to CseError codes the HTTP functions know.
 * Anything not listed here (network failures, 5xx, authorization) is passed on unchanged: it is not a property
 * of the caller's request.
 */
import { CseError } from '../errors';

interface ServiceError {
  readonly statusCode?: number;
  readonly code?: string;
  readonly message?: string;
}

function asServiceError(e: unknown): ServiceError | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const status = (e as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? (e as ServiceError) : undefined;
}

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
  const err = asServiceError(e);
  if (err === undefined) return e;
  const code = err.code ?? '';
  switch (err.statusCode) {
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
