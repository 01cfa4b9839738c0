/**
 * The key-encryption-key (KEK) abstraction shared by local keys and Key Vault keys.
 *
 * A KEK wraps a content-encryption key (CEK) or, for v2.0, the 40-byte `"2.0"‖00×5‖CEK` payload. The key id a
 * KEK reports is what gets stored in `WrappedContentKey.KeyId`, so for Key Vault it is always the versioned id.
 */

/** Wrap algorithms as written in `WrappedContentKey.Algorithm` by the .NET, Java and Python SDKs. */
export type WrapAlgorithm = 'A256KW' | 'RSA-OAEP' | 'RSA-OAEP-256';

export const WRAP_ALGORITHMS: readonly WrapAlgorithm[] = ['A256KW', 'RSA-OAEP', 'RSA-OAEP-256'];

export function isWrapAlgorithm(value: string): value is WrapAlgorithm {
  return (WRAP_ALGORITHMS as readonly string[]).includes(value);
}

export interface KeyEncryptionKey {
  /** The id stored beside wrapped keys (versioned for Key Vault). */
  readonly keyId: string;
  /** The algorithm used when this key wraps new content keys. */
  readonly defaultAlgorithm: WrapAlgorithm;
  wrapKey(algorithm: WrapAlgorithm, key: Uint8Array): Promise<Buffer>;
  /** Throws CseError: IntegrityCheckFailed (wrong key / tampered), UnsupportedAlgorithm, KeyUnavailable. */
  unwrapKey(algorithm: WrapAlgorithm, wrappedKey: Uint8Array): Promise<Buffer>;
}

/**
 * Resolves key ids read from stored metadata. Those ids are untrusted input: an implementation must refuse
 * (CseError KeyNotAllowed) any id the configuration does not allow, before any network connection.
 */
export interface KeyResolver {
  resolve(keyId: string): Promise<KeyEncryptionKey>;
}
