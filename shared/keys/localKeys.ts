/**
 * Local key-encryption keys from a JWK Set (RFC 7517) file, for development, the CLI and tests:
 *
 *   {"keys":[{"kid":"local:kek-1","kty":"oct","alg":"A256KW","k":"<base64url 32 bytes>"},
 *            {"kid":"local:rsa-1","kty":"RSA","alg":"RSA-OAEP"|"RSA-OAEP-256","n","e","d","p","q","dp","dq","qi"}]}
 *
 * A256KW is RFC 3394 AES key wrap (node's `id-aes256-wrap`); RSA-OAEP is OAEP with SHA-1/MGF1-SHA-1 and
 * RSA-OAEP-256 with SHA-256/MGF1-SHA-256, empty label (as Key Vault, .NET and Java use them). Every key is
 * validated and turned into a KeyObject once, at load; a key that cannot be used fails there with CseError
 * 'InvalidKey' naming the key and the reason. Messages never contain key material.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CseError } from '../errors';
import { decodeBase64UrlStrict } from '../crypto/strictBase64';
import type { KeyEncryptionKey, KeyResolver, WrapAlgorithm } from './kek';

/** The JWK members this module reads. Other members (use, key_ops, x5c, ...) are ignored. */
export type LocalJwk =
  | { kid: string; kty: 'oct'; alg: 'A256KW'; k: string }
  | {
      kid: string;
      kty: 'RSA';
      alg: 'RSA-OAEP' | 'RSA-OAEP-256';
      n: string;
      e: string;
      d: string;
      p: string;
      q: string;
      dp: string;
      dq: string;
      qi: string;
    };

/** Smallest RSA modulus accepted (NIST SP 800-131A). */
export const MIN_RSA_BITS = 2048;

/** RFC 3394 default initial value. */
const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

const RSA_MEMBERS = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;

// ---------------------------------------------------------------------------------------------------------------
// Key ring

/** The keys of one JWK Set, by `kid`. Also a KeyResolver (KeyNotFound for an unknown id). */
export class LocalKeyRing implements KeyResolver {
  readonly #byKid: ReadonlyMap<string, KeyEncryptionKey>;

  constructor(keys: readonly KeyEncryptionKey[]) {
    const byKid = new Map<string, KeyEncryptionKey>();
    for (const key of keys) {
      if (byKid.has(key.keyId)) throw new CseError('InvalidKey', `duplicate key id ${JSON.stringify(key.keyId)}`);
      byKid.set(key.keyId, key);
    }
    this.#byKid = byKid;
  }

  get kids(): readonly string[] {
    return [...this.#byKid.keys()];
  }

  get(kid: string): KeyEncryptionKey | undefined {
    return this.#byKid.get(kid);
  }

  async resolve(keyId: string): Promise<KeyEncryptionKey> {
    const key = this.#byKid.get(keyId);
    if (key === undefined) throw new CseError('KeyNotFound', `no local key with id ${JSON.stringify(keyId)}`);
    return key;
  }
}

/** Parses a JWK Set. `source` (e.g. the file path) only appears in error messages. */
export function parseJwkSet(json: string, source: string): LocalKeyRing {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    // Do not forward V8's message: it quotes the input, which is key material.
    throw new CseError('InvalidKey', `${source}: not valid JSON`);
  }
  if (!isObject(doc) || !Array.isArray(doc['keys'])) {
    throw new CseError('InvalidKey', `${source}: expected a JWK Set, {"keys": [...]}`);
  }
  const entries: unknown[] = doc['keys'];
  if (entries.length === 0) throw new CseError('InvalidKey', `${source}: the JWK Set has no keys`);
  const keys = entries.map((jwk, index) => {
    try {
      return createLocalKey(jwk);
    } catch (e) {
      if (e instanceof CseError) throw new CseError(e.code, `${source}: key #${index}: ${e.message}`);
      throw e;
    }
  });
  try {
    return new LocalKeyRing(keys);
  } catch (e) {
    if (e instanceof CseError) throw new CseError(e.code, `${source}: ${e.message}`);
    throw e;
  }
}

/** Reads and parses a JWK Set file. */
export async function loadLocalKeys(path: string): Promise<LocalKeyRing> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new CseError('ConfigurationError', `cannot read key file ${path} (${code})`);
  }
  return parseJwkSet(text, path);
}

/** A JWK Set JSON text with one fresh random A256KW key (for the local development host). */
export function generateDevelopmentKeySet(kid: string): string {
  if (typeof kid !== 'string' || kid.length === 0) throw new CseError('InvalidKey', 'kid must be a non-empty string');
  const jwk: LocalJwk = { kid, kty: 'oct', alg: 'A256KW', k: randomBytes(32).toString('base64url') };
  return JSON.stringify({ keys: [jwk] }, null, 2) + '\n';
}

// ---------------------------------------------------------------------------------------------------------------
// One key

/** Validates a JWK and creates the key. Accepts `unknown` because JWKs come from files. */
export function createLocalKey(jwk: LocalJwk | unknown): KeyEncryptionKey {
  if (!isObject(jwk)) throw new CseError('InvalidKey', 'a JWK must be a JSON object');
  const kid = jwk['kid'];
  if (typeof kid !== 'string' || kid.length === 0) {
    throw new CseError('InvalidKey', 'the JWK has no "kid" (a non-empty string is required)');
  }
  const fail = (reason: string): never => {
    throw new CseError('InvalidKey', `key ${JSON.stringify(kid)}: ${reason}`);
  };
  const kty = jwk['kty'];
  const alg = jwk['alg'];
  if (kty === 'oct') {
    if (alg !== 'A256KW') fail(`an "oct" key must have "alg": "A256KW", got ${describe(alg)}`);
    const k = typeof jwk['k'] === 'string' ? decodeBase64UrlStrict(jwk['k']) : undefined;
    if (k === undefined) return fail('"k" must be base64url text');
    if (k.length !== 32) fail(`"k" must be 32 bytes for A256KW, got ${k.length}`);
    return new AesKeyWrapKey(kid, createSecretKey(k));
  }
  if (kty === 'RSA') {
    if (alg !== 'RSA-OAEP' && alg !== 'RSA-OAEP-256') {
      fail(`an "RSA" key must have "alg": "RSA-OAEP" or "RSA-OAEP-256", got ${describe(alg)}`);
    }
    for (const member of RSA_MEMBERS) {
      const value = jwk[member];
      if (typeof value !== 'string' || value.length === 0) {
        fail(`"${member}" is missing (a private RSA key needs ${RSA_MEMBERS.join(', ')})`);
      } else if (decodeBase64UrlStrict(value) === undefined) {
        fail(`"${member}" must be base64url text`);
      }
    }
    let privateKey: KeyObject;
    try {
      const fields = Object.fromEntries(RSA_MEMBERS.map((m) => [m, jwk[m] as string]));
      privateKey = createPrivateKey({ key: { kty: 'RSA', ...fields }, format: 'jwk' });
    } catch {
      return fail('the RSA parameters do not form a valid private key');
    }
    const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) fail(`RSA keys must be at least ${MIN_RSA_BITS} bits, got ${bits}`);
    // Node does not check that n, e, d, p, q, ... agree; an inconsistent key would fail unwraps later as
    // "IntegrityCheckFailed" (or, worse, wrap with n and never unwrap). Check the RSA relations now.
    if (!rsaParametersConsistent(jwk)) fail('the RSA parameters are inconsistent (n, e, d, p, q, dp, dq, qi)');
    return new RsaOaepKey(kid, alg as 'RSA-OAEP' | 'RSA-OAEP-256', privateKey);
  }
  return fail(`unsupported "kty" ${describe(kty)} (expected "oct" or "RSA")`);
}

/** RFC 3394 AES-256 key wrap. Deterministic; input must be a multiple of 8 bytes, at least 16. */
class AesKeyWrapKey implements KeyEncryptionKey {
  readonly defaultAlgorithm = 'A256KW';
  readonly #key: KeyObject;

  constructor(
    readonly keyId: string,
    key: KeyObject,
  ) {
    this.#key = key;
  }

  async wrapKey(algorithm: WrapAlgorithm, key: Uint8Array): Promise<Buffer> {
    this.#requireAlgorithm(algorithm);
    if (key.length < 16 || key.length % 8 !== 0) {
      throw new CseError('InvalidKey', `A256KW wraps a multiple of 8 bytes (at least 16), got ${key.length}`);
    }
    const cipher = createCipheriv('id-aes256-wrap', this.#key, AES_KW_IV);
    return Buffer.concat([cipher.update(key), cipher.final()]);
  }

  async unwrapKey(algorithm: WrapAlgorithm, wrappedKey: Uint8Array): Promise<Buffer> {
    this.#requireAlgorithm(algorithm);
    if (wrappedKey.length < 24 || wrappedKey.length % 8 !== 0) {
      throw new CseError('IntegrityCheckFailed', `A256KW: wrapped key of ${wrappedKey.length} bytes is not valid`);
    }
    try {
      const decipher = createDecipheriv('id-aes256-wrap', this.#key, AES_KW_IV);
      return Buffer.concat([decipher.update(wrappedKey), decipher.final()]);
    } catch {
      // The RFC 3394 integrity check failed: wrong key or tampered wrapped key.
      throw new CseError('IntegrityCheckFailed', `could not unwrap with key ${JSON.stringify(this.keyId)} (A256KW)`);
    }
  }

  #requireAlgorithm(algorithm: WrapAlgorithm): void {
    if (algorithm !== 'A256KW') {
      throw new CseError(
        'UnsupportedAlgorithm',
        `key ${JSON.stringify(this.keyId)} is an A256KW key, not ${algorithm}`,
      );
    }
  }
}

/**
 * RSA-OAEP key. Wraps with the JWK's `alg`; unwraps either OAEP variant, like a Key Vault RSA key, because
 * the algorithm used is stored beside each wrapped key and another SDK may have chosen the other one.
 */
class RsaOaepKey implements KeyEncryptionKey {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;

  constructor(
    readonly keyId: string,
    readonly defaultAlgorithm: 'RSA-OAEP' | 'RSA-OAEP-256',
    privateKey: KeyObject,
  ) {
    this.#privateKey = privateKey;
    this.#publicKey = createPublicKey(privateKey);
  }

  async wrapKey(algorithm: WrapAlgorithm, key: Uint8Array): Promise<Buffer> {
    const oaepHash = this.#hashFor(algorithm);
    try {
      return publicEncrypt({ key: this.#publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, key);
    } catch {
      throw new CseError(
        'InvalidKey',
        `${algorithm} cannot wrap ${key.length} bytes with key ${JSON.stringify(this.keyId)}`,
      );
    }
  }

  async unwrapKey(algorithm: WrapAlgorithm, wrappedKey: Uint8Array): Promise<Buffer> {
    const oaepHash = this.#hashFor(algorithm);
    try {
      return privateDecrypt({ key: this.#privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, wrappedKey);
    } catch {
      throw new CseError(
        'IntegrityCheckFailed',
        `could not unwrap with key ${JSON.stringify(this.keyId)} (${algorithm})`,
      );
    }
  }

  #hashFor(algorithm: WrapAlgorithm): 'sha1' | 'sha256' {
    if (algorithm === 'RSA-OAEP') return 'sha1';
    if (algorithm === 'RSA-OAEP-256') return 'sha256';
    throw new CseError('UnsupportedAlgorithm', `key ${JSON.stringify(this.keyId)} is an RSA key, not ${algorithm}`);
  }
}

/** n = p·q, e·dp ≡ 1 (mod p−1), e·dq ≡ 1 (mod q−1), dp = d mod (p−1), dq = d mod (q−1), qi·q ≡ 1 (mod p). */
function rsaParametersConsistent(jwk: Record<string, unknown>): boolean {
  const int = (member: string): bigint => {
    const hex = Buffer.from(jwk[member] as string, 'base64url').toString('hex');
    return hex.length === 0 ? 0n : BigInt('0x' + hex);
  };
  const [n, e, d, p, q, dp, dq, qi] = RSA_MEMBERS.map(int) as [
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  if (p < 3n || q < 3n) return false;
  return (
    n === p * q &&
    (e * dp) % (p - 1n) === 1n &&
    (e * dq) % (q - 1n) === 1n &&
    d % (p - 1n) === dp &&
    d % (q - 1n) === dq &&
    (qi * q) % p === 1n
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Describes a JWK member value for an error message without echoing long strings. */
function describe(value: unknown): string {
  if (typeof value === 'string' && value.length <= 32) return JSON.stringify(value);
  return value === undefined ? 'nothing' : typeof value;
}
