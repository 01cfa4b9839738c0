/**
 * Access to the golden vectors copied into test/fixtures/vectors (outputs of Microsoft's Python SDK; see the
 * README there). The vector KEKs are stored as raw bytes / PEM; this converts them to the JWKs our key ring reads.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fixturePath } from './paths';
import { parseJwkSet, type LocalKeyRing } from '../../shared/keys/localKeys';

export interface BlobVector {
  id: string;
  protocol: '1.0' | '2.0';
  kid: string;
  plaintext: { length: number; sha256: string; hex?: string | null };
  ciphertext_file: string;
  ciphertext_length: number;
  ciphertext_sha256: string;
  encryptiondata_file: string;
  metadata_file: string;
  cek_hex: string;
  wrapped_plaintext_hex: string;
  iv_hex?: string;
  region_nonces_hex?: string[];
  region_data_length?: number;
}

export interface VectorManifest {
  blob: BlobVector[];
  [other: string]: unknown;
}

export function vectorPath(...parts: string[]): string {
  return fixturePath('vectors', ...parts);
}

export function loadManifest(): VectorManifest {
  return JSON.parse(readFileSync(vectorPath('manifest.json'), 'utf8')) as VectorManifest;
}

/** The vector KEKs as a JWK Set JSON text (oct `local:kek-1` A256KW, RSA `local:rsa-1` RSA-OAEP). */
export function vectorJwkSetJson(): string {
  const oct = JSON.parse(readFileSync(vectorPath('keks', 'kek-oct.json'), 'utf8')) as { kid: string; k: string };
  const rsa = JSON.parse(readFileSync(vectorPath('keks', 'kek-rsa.json'), 'utf8')) as { kid: string; pem: string };
  const octJwk = { kid: oct.kid, kty: 'oct', alg: 'A256KW', k: Buffer.from(oct.k, 'base64').toString('base64url') };
  const rsaJwk = { ...createPrivateKey(rsa.pem).export({ format: 'jwk' }), kid: rsa.kid, alg: 'RSA-OAEP' };
  return JSON.stringify({ keys: [octJwk, rsaJwk] });
}

export function vectorKeyRing(): LocalKeyRing {
  return parseJwkSet(vectorJwkSetJson(), 'vector keys');
}

/** The vectors' blob plaintext: byte i = i mod 251. */
export function patternPlaintext(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = i % 251;
  return out;
}
