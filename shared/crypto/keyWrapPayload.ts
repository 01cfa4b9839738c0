/**
 * What gets wrapped by the key-encryption key, and the strict check on unwrap (FORMAT.md §3.2-3.3).
 *
 * v1 wraps the bare 32-byte CEK. v2.x wraps `ASCII(protocol) ‖ 00×5 ‖ CEK` (40 bytes): the prefix binds the
 * protocol to the key, so editing `Protocol` in the stored metadata (a downgrade to v1, or 2.0 ⇄ 2.1) makes the
 * unwrap check fail. The check here is the strictest of the SDKs' (exact length, prefix and zero padding), which
 * every SDK's writer satisfies.
 */
import { CseError } from '../errors';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';
import { isWrapAlgorithm } from '../keys/kek';
import type { ContentProtocol, WrappedContentKey } from './encryptionData';

export const CEK_LENGTH = 32;
const PREFIX_LENGTH = 8;

/** The wrapped key as produced by wrapContentKey (same shape as EncryptionData's wrappedContentKey). */
export type WrapResult = WrappedContentKey;

/** Wraps a 32-byte content key with the KEK's default algorithm. Writers in this project use protocol 2.0. */
export async function wrapContentKey(
  kek: KeyEncryptionKey,
  cek: Uint8Array,
  protocol: '1.0' | '2.0',
): Promise<WrapResult> {
  if (cek.length !== CEK_LENGTH) {
    throw new CseError('InvalidKey', `a content key is ${CEK_LENGTH} bytes, got ${cek.length}`);
  }
  const payload = protocol === '1.0' ? Buffer.from(cek) : v2Payload(protocol, cek);
  try {
    const algorithm = kek.defaultAlgorithm;
    const encryptedKey = await kek.wrapKey(algorithm, payload);
    return { keyId: kek.keyId, algorithm, encryptedKey };
  } finally {
    payload.fill(0);
  }
}

/**
 * Resolves the KEK named by `wrapped.keyId`, unwraps, and checks the payload for `protocol`. Returns the 32-byte
 * CEK. Throws CseError: IntegrityCheckFailed (wrong key, tampered key, protocol prefix mismatch),
 * UnsupportedAlgorithm (an algorithm name this project does not know or the key cannot do), and whatever the
 * resolver throws (KeyNotAllowed, KeyNotFound, KeyUnavailable).
 */
export async function unwrapContentKey(
  resolver: KeyResolver,
  wrapped: WrappedContentKey,
  protocol: ContentProtocol,
): Promise<Buffer> {
  if (!isWrapAlgorithm(wrapped.algorithm)) {
    throw new CseError(
      'UnsupportedAlgorithm',
      `key wrap algorithm ${JSON.stringify(wrapped.algorithm)} is not supported`,
    );
  }
  // The KEK's own id is not compared with wrapped.keyId: resolvers may normalise ids (e.g. Key Vault URLs), and
  // a wrong key cannot pass the unwrap integrity check anyway.
  const kek = await resolver.resolve(wrapped.keyId);
  let payload: Buffer;
  try {
    payload = await kek.unwrapKey(wrapped.algorithm, wrapped.encryptedKey);
  } catch (e) {
    if (e instanceof CseError) throw e;
    throw new CseError(
      'IntegrityCheckFailed',
      `could not unwrap the content key with ${JSON.stringify(wrapped.keyId)}`,
      {
        cause: e,
      },
    );
  }
  try {
    return protocol === '1.0' ? checkV1Payload(payload) : checkV2Payload(protocol, payload);
  } finally {
    payload.fill(0);
  }
}

function v2Payload(protocol: '2.0' | '2.1', cek: Uint8Array): Buffer {
  const payload = Buffer.alloc(PREFIX_LENGTH + CEK_LENGTH);
  payload.write(protocol, 0, 'ascii');
  payload.set(cek, PREFIX_LENGTH);
  return payload;
}

function checkV1Payload(payload: Buffer): Buffer {
  if (payload.length !== CEK_LENGTH) {
    throw new CseError('IntegrityCheckFailed', 'the unwrapped content key has the wrong length for protocol 1.0');
  }
  return Buffer.from(payload);
}

function checkV2Payload(protocol: '2.0' | '2.1', payload: Buffer): Buffer {
  const expectedPrefix = v2Payload(protocol, Buffer.alloc(CEK_LENGTH)).subarray(0, PREFIX_LENGTH);
  if (payload.length !== PREFIX_LENGTH + CEK_LENGTH || !payload.subarray(0, PREFIX_LENGTH).equals(expectedPrefix)) {
    throw new CseError(
      'IntegrityCheckFailed',
      `the unwrapped content key does not carry the protocol ${protocol} prefix (the encryption data was modified)`,
    );
  }
  return Buffer.from(payload.subarray(PREFIX_LENGTH));
}
