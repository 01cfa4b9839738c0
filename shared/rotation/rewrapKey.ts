/**
 * Re-wrapping one blob's content key (FORMAT.md §7): unwrap with the key named in the encryption data (through
 * the allow-listed resolver), wrap the same payload with the target key, and change nothing but
 * `WrappedContentKey`. The content and the content key never change, so the blob's bytes stay valid.
 *
 * The unwrap goes through the strict check of keyWrapPayload (exact length, protocol prefix, zero padding), so
 * encryption data that was tampered with is reported (IntegrityCheckFailed) instead of being re-wrapped and
 * blessed with the new key. The payload wrapped again is the one the protocol prescribes: the bare CEK for 1.0,
 * `protocol ‖ 00×5 ‖ CEK` for 2.0 and 2.1 (the prefix binds the protocol, so it must stay what it was).
 *
 * The unwrapped key lives only in local buffers that are zeroed before returning; nothing here logs.
 * Table entities use tables/tableKeyMetadata.ts `rewrapTableKeyMetadata`, the same operation on
 * `_ClientEncryptionMetadata1`.
 */
import type { EncryptionData, WrappedContentKey } from '../crypto/encryptionData';
import { unwrapContentKey, wrapContentKey } from '../crypto/keyWrapPayload';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';

export async function rewrapEncryptionData(
  data: EncryptionData,
  resolver: KeyResolver,
  target: KeyEncryptionKey,
): Promise<EncryptionData> {
  const cek = await unwrapContentKey(resolver, data.wrappedContentKey, data.protocol);
  try {
    const wrappedContentKey =
      data.protocol === '2.1' ? await wrapV21Payload(target, cek) : await wrapContentKey(target, cek, data.protocol);
    return { ...data, wrappedContentKey };
  } finally {
    cek.fill(0);
  }
}

/**
 * wrapContentKey writes only the protocols this project writes (1.0 for tables, 2.0); a 2.1 blob (written by
 * Java) keeps its own prefix when re-wrapped.
 */
async function wrapV21Payload(target: KeyEncryptionKey, cek: Buffer): Promise<WrappedContentKey> {
  const payload = Buffer.alloc(8 + cek.length);
  payload.write('2.1', 0, 'ascii');
  cek.copy(payload, 8);
  try {
    const algorithm = target.defaultAlgorithm;
    const encryptedKey = await target.wrapKey(algorithm, payload);
    return { keyId: target.keyId, algorithm, encryptedKey };
  } finally {
    payload.fill(0);
  }
}
