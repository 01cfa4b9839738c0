/**
 * Every failure the library reports is a CseError with a stable `code`. HTTP functions map codes to statuses
 * (functions/ does that, not the library); the CLI prints `code: message`. Messages never contain key material.
 */
export type CseErrorCode =
  // Encryption data and content
  | 'InvalidEncryptionData' // the encryptiondata JSON (or a table/queue envelope) is malformed
  | 'UnsupportedProtocol' // a protocol or algorithm this library does not read
  | 'IntegrityCheckFailed' // authentication failed: tampered, truncated, reordered, wrong key, bad padding (v1)
  | 'RegionTooLarge' // EncryptedRegionInfo.DataLength above the configured maximum
  | 'LegacyFormatDisabled' // v1.0 content without the opt-in
  | 'NotEncrypted' // content carries no encryption data
  // Keys
  | 'KeyNotAllowed' // a key id the configuration does not allow (never contacted)
  | 'KeyNotFound' // an allowed key id that does not exist
  | 'InvalidKey' // a key (JWK, PEM, ...) that cannot be used
  | 'KeyUnavailable' // Key Vault unreachable or throttled; `retryAfterSeconds` may be set
  | 'UnsupportedAlgorithm' // a wrap algorithm the key cannot do
  // Input
  | 'InvalidRange'
  | 'RangeNotSatisfiable'
  | 'InvalidName'
  | 'InvalidMetadata'
  | 'ReservedMetadata'
  | 'MetadataTooLarge'
  | 'InvalidMessage'
  | 'InvalidRequest' // a request the HTTP API cannot act on (bad query parameter, body shorter than announced)
  | 'ConfigurationError'
  // Storage-facing (used by functions and workers)
  | 'ContainerNotAllowed'
  | 'TableNotAllowed'
  | 'BlobNotFound'
  | 'BlobExists'
  | 'ConditionNotMet'
  | 'EntityExists'
  | 'EntityNotFound'
  | 'PropertyNotEncryptable'
  | 'EntityTooLarge'
  | 'EncryptedPropertyFilter'
  | 'InvalidEntity' // an entity whose properties or values cannot be stored (bad JSON wire form, bad EDM value)
  | 'UnsupportedOperation' // e.g. Merge on an encrypted table entity (its encrypted-name list cannot be kept)
  | 'InvalidContinuationToken' // a listing continuation token this service did not issue
  | 'RotationRunning'
  | 'RotationNotFound';

export class CseError extends Error {
  override readonly name = 'CseError';
  /** Seconds a caller should wait before retrying (KeyUnavailable when throttled). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: CseErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export function isCseError(e: unknown, code?: CseErrorCode): e is CseError {
  return e instanceof CseError && (code === undefined || e.code === code);
}
