/**
 * Builds v2.x blobs independently of shared/crypto/blobEncryption (straight from node's AES-GCM), so reader
 * tests can use other SDKs' nonce schemes, small v2.1 region sizes, and hand-made damage.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import type { KeyEncryptionKey } from '../../shared/keys/kek';

export type NonceScheme = 'python' | 'java' | 'dotnet';

/** FORMAT.md §2.3, written out independently of the reader's copy. */
export function sdkNonce(scheme: NonceScheme, region: number): Buffer {
  const hex = (n: bigint, bytes: number) => n.toString(16).padStart(bytes * 2, '0');
  const i = BigInt(region);
  if (scheme === 'python') return Buffer.from(hex(i, 12), 'hex');
  if (scheme === 'java') return Buffer.from(hex(i, 8) + '00000000', 'hex');
  const le = Buffer.from(hex(i + 1n, 8), 'hex').reverse();
  return Buffer.concat([Buffer.alloc(4), le]);
}

/** The stored regions (nonce ‖ ciphertext ‖ tag) of `plaintext`, one Buffer per region. */
export function v2Regions(
  plaintext: Buffer,
  cek: Buffer,
  regionLength: number,
  nonce: (region: number) => Buffer = (i) => sdkNonce('python', i),
): Buffer[] {
  const regions: Buffer[] = [];
  for (let i = 0, off = 0; off < plaintext.length; i++, off += regionLength) {
    const n = nonce(i);
    const cipher = createCipheriv('aes-256-gcm', cek, n);
    const ct = Buffer.concat([cipher.update(plaintext.subarray(off, off + regionLength)), cipher.final()]);
    regions.push(Buffer.concat([n, ct, cipher.getAuthTag()]));
  }
  return regions;
}

export interface V2TestBlob {
  plaintext: Buffer;
  cek: Buffer;
  regions: Buffer[];
  stored: Buffer;
  metadataValue: string;
}

/** A complete blob with its encryption data (the wrap prefix follows `protocol`). */
export async function makeV2Blob(
  kek: KeyEncryptionKey,
  plaintext: Buffer,
  options: { protocol?: '2.0' | '2.1'; regionLength?: number; scheme?: NonceScheme; cek?: Buffer } = {},
): Promise<V2TestBlob> {
  const protocol = options.protocol ?? '2.0';
  const regionLength = options.regionLength ?? 4 * 1024 * 1024;
  const cek = options.cek ?? randomBytes(32);
  const scheme = options.scheme ?? 'python';
  const regions = v2Regions(plaintext, cek, regionLength, (i) => sdkNonce(scheme, i));
  const payload = Buffer.concat([Buffer.from(protocol.padEnd(8, '\0'), 'latin1'), cek]);
  const encryptedKey = await kek.wrapKey(kek.defaultAlgorithm, payload);
  const metadataValue = JSON.stringify({
    WrappedContentKey: {
      KeyId: kek.keyId,
      EncryptedKey: encryptedKey.toString('base64'),
      Algorithm: kek.defaultAlgorithm,
    },
    EncryptionAgent: { Protocol: protocol, EncryptionAlgorithm: 'AES_GCM_256' },
    EncryptedRegionInfo: { DataLength: regionLength, NonceLength: 12 },
    KeyWrappingMetadata: { EncryptionLibrary: 'test' },
    EncryptionMode: 'FullBlob',
  });
  return { plaintext, cek, regions, stored: Buffer.concat(regions), metadataValue };
}
