/**
 * Key-encryption keys in Azure Key Vault or Managed HSM, through `@azure/keyvault-keys`.
 *
 * Cost model (Key Vault throttles per vault, ECOSYSTEM.md §4.2):
 *  - key material (the public key and attributes) is fetched once per key version and kept for a bounded time
 *    (`keyMaterialTtlMs`); the current version of a versionless key id for `currentVersionTtlMs`;
 *  - RSA-OAEP and RSA-OAEP-256 wraps run locally with the public key (an upload costs no Key Vault call), after
 *    the same checks Key Vault would make (enabled, not before/after the validity window, `wrapKey` allowed);
 *  - unwraps run in Key Vault (the private key never leaves it) and are cached per (key id, wrapped key) by
 *    UnwrappedKeyCache, so a blob read twice costs one unwrap;
 *  - 429 / Retry-After is honoured per vault by ThrottleGate (throttle.ts).
 *
 * Expired key versions: Key Vault itself lets an expired (but enabled) key unwrap, and the .NET SDK deliberately
 * does not check expiry on unwrap, but `CryptographyClient` refuses client-side before sending anything
 * (`ensureValid`, ECOSYSTEM.md §4.2). Data wrapped under a version that has since expired must stay readable, so
 * remote operations go through a CryptographyClient built from a copy of the key whose client-side validity
 * attributes (notBefore, expiresOn, keyOperations) are cleared: the request still goes through the SDK's own
 * pipeline (challenge authentication, retries), and Key Vault alone decides whether the operation is allowed.
 */
import { constants, createPublicKey, publicEncrypt, type KeyObject } from 'node:crypto';
import { CryptographyClient, KeyClient, type KeyClientOptions, type KeyVaultKey } from '@azure/keyvault-keys';
import type { TokenCredential } from '@azure/identity';
import { CseError } from '../errors';
import type { KeyEncryptionKey, WrapAlgorithm } from './kek';
import type { KeyVaultKeyId } from './keyId';
import { quote } from './keyId';
import type { UnwrappedKeyCache } from './cekCache';
import { ThrottleGate, throttleDetectionPolicy, type ThrottleOptions } from './throttle';

export const DEFAULT_KEY_MATERIAL_TTL_MS = 10 * 60_000;
export const DEFAULT_CURRENT_VERSION_TTL_MS = 60_000;
export const DEFAULT_MAX_CACHED_VERSIONS = 1000;
export const DEFAULT_NOT_FOUND_TTL_MS = 60_000;

export interface KeyVaultKeysOptions {
  readonly credential: TokenCredential;
  /**
   * Extra client options for KeyClient / CryptographyClient. Production leaves this unset. Tests against the
   * stand-in pass `{ disableChallengeResourceVerification: true, allowInsecureConnection: true }`.
   */
  readonly clientOptions?: KeyClientOptions;
  readonly cekCache: UnwrappedKeyCache;
  readonly keyMaterialTtlMs?: number;
  readonly currentVersionTtlMs?: number;
  /** Key versions kept in memory (least recently used go first); also bounds the not-found memory. */
  readonly maxCachedVersions?: number;
  /** How long a key id that Key Vault reported missing is answered KeyNotFound without asking again. */
  readonly notFoundTtlMs?: number;
  readonly throttle?: ThrottleOptions;
  readonly now?: () => number;
}

type KeyFamily = 'rsa' | 'aes';

/** The key ids of every vault this process talks to; one Vault (KeyClient, throttle gate, caches) per vault URL. */
export class KeyVaultKeys {
  readonly #options: KeyVaultKeysOptions;
  readonly #vaults = new Map<string, Vault>();

  constructor(options: KeyVaultKeysOptions) {
    this.#options = options;
  }

  /**
   * The KEK for a key id that the caller has already checked against the allow-list. A versioned id gives that
   * version; a versionless id the current version (looked up at most every `currentVersionTtlMs`, or now with
   * `refresh`). The KEK's keyId is always the versioned id.
   */
  async key(id: KeyVaultKeyId, options: { refresh?: boolean } = {}): Promise<KeyVaultKek> {
    return this.#vault(id.vaultUrl).key(id.name, id.version, options.refresh ?? false);
  }

  #vault(vaultUrl: string): Vault {
    let vault = this.#vaults.get(vaultUrl);
    if (vault === undefined) {
      vault = new Vault(vaultUrl, this.#options);
      this.#vaults.set(vaultUrl, vault);
    }
    return vault;
  }
}

/**
 * A plain-http vault URL can only be a loopback Key Vault stand-in (keyId.ts refuses http for any other host), so
 * the app can run locally against one: the SDK refuses http unless `allowInsecureConnection`, and checks that the
 * challenge's resource (https://vault.azure.net) matches the vault's domain, which 127.0.0.1 never does. Both are
 * relaxed for a loopback http URL only (checked again here); an https vault always gets the SDK's defaults.
 */
export function loopbackStandInOptions(vaultUrl: string): KeyClientOptions {
  const match = /^http:\/\/(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3})(:\d{1,5})?$/i.exec(vaultUrl);
  return match === null ? {} : { allowInsecureConnection: true, disableChallengeResourceVerification: true };
}

interface CurrentVersion {
  readonly version: string;
  readonly fetchedAt: number;
}

class Vault {
  readonly gate: ThrottleGate;
  readonly #client: KeyClient;
  readonly #options: KeyVaultKeysOptions;
  readonly #now: () => number;
  readonly #materialTtlMs: number;
  readonly #currentTtlMs: number;
  readonly #maxVersions: number;
  /** Versioned keys by `name/version`, in least-recently-used order. */
  readonly #keys = new Map<string, KeyVaultKek>();
  readonly #current = new Map<string, CurrentVersion>();
  readonly #pending = new Map<string, Promise<KeyVaultKey>>();
  /** `name/version` -> time until which it is known not to exist. */
  readonly #notFound = new Map<string, number>();
  readonly #notFoundTtlMs: number;

  constructor(
    readonly vaultUrl: string,
    options: KeyVaultKeysOptions,
  ) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#materialTtlMs = options.keyMaterialTtlMs ?? DEFAULT_KEY_MATERIAL_TTL_MS;
    this.#currentTtlMs = options.currentVersionTtlMs ?? DEFAULT_CURRENT_VERSION_TTL_MS;
    this.#maxVersions = options.maxCachedVersions ?? DEFAULT_MAX_CACHED_VERSIONS;
    this.#notFoundTtlMs = options.notFoundTtlMs ?? DEFAULT_NOT_FOUND_TTL_MS;
    this.gate = new ThrottleGate(vaultUrl, { now: this.#now, ...options.throttle });
    this.#client = new KeyClient(vaultUrl, options.credential, this.clientOptions());
  }

  /** Fresh options per client: the SDK mutates the object it is given (userAgentOptions). */
  clientOptions(): KeyClientOptions {
    const injected = this.#options.clientOptions ?? {};
    return {
      ...loopbackStandInOptions(this.vaultUrl),
      ...injected,
      additionalPolicies: [
        ...(injected.additionalPolicies ?? []),
        { policy: throttleDetectionPolicy as never, position: 'perRetry' },
      ],
    };
  }

  get credential(): TokenCredential {
    return this.#options.credential;
  }

  get cekCache(): UnwrappedKeyCache {
    return this.#options.cekCache;
  }

  now(): number {
    return this.#now();
  }

  isStale(fetchedAt: number): boolean {
    return this.#now() - fetchedAt >= this.#materialTtlMs;
  }

  async key(name: string, version: string | undefined, refresh: boolean): Promise<KeyVaultKek> {
    if (version === undefined) return this.#currentKey(name, refresh);
    const cacheKey = `${name}/${version}`;
    const known = this.#keys.get(cacheKey);
    if (known !== undefined) {
      this.#keys.delete(cacheKey);
      this.#keys.set(cacheKey, known);
      return known;
    }
    return this.#remember(name, await this.fetch(name, version));
  }

  async #currentKey(name: string, refresh: boolean): Promise<KeyVaultKek> {
    const current = this.#current.get(name);
    if (!refresh && current !== undefined && this.#now() - current.fetchedAt < this.#currentTtlMs) {
      return this.key(name, current.version, false);
    }
    const bundle = await this.fetch(name, undefined);
    const kek = this.#remember(name, bundle);
    this.#current.set(name, { version: kek.version, fetchedAt: this.#now() });
    return kek;
  }

  /**
   * Caches the KEK of a fetched bundle (or refreshes the cached one's material). The KEK's id is built from the
   * vault URL we called and the name we asked for, never from the `kid` in the response.
   */
  #remember(name: string, bundle: KeyVaultKey): KeyVaultKek {
    const version = bundle.properties.version;
    if (version === undefined || !/^[A-Za-z0-9]{1,64}$/.test(version)) {
      throw new CseError('KeyUnavailable', `Key Vault returned key ${quote(name)} without a valid version`);
    }
    const cacheKey = `${name}/${version}`;
    let kek = this.#keys.get(cacheKey);
    if (kek === undefined) {
      kek = new KeyVaultKek(this, name, version, bundle, this.#now());
    } else {
      kek.updateMaterial(bundle, this.#now());
      this.#keys.delete(cacheKey);
    }
    this.#keys.set(cacheKey, kek);
    while (this.#keys.size > this.#maxVersions) {
      const oldest = this.#keys.keys().next().value as string;
      this.#keys.delete(oldest);
    }
    return kek;
  }

  /**
   * GET the key (one request at a time per key version), with throttling and error mapping. A key or version
   * that does not exist is remembered for `notFoundTtlMs`: stored ids are untrusted, and metadata naming many
   * made-up versions of an allowed key must not turn every read into a Key Vault call.
   */
  fetch(name: string, version: string | undefined): Promise<KeyVaultKey> {
    const pendingKey = `${name}/${version ?? ''}`;
    const keyId = `${this.vaultUrl}/keys/${name}${version === undefined ? '' : `/${version}`}`;
    const missingUntil = this.#notFound.get(pendingKey);
    if (missingUntil !== undefined) {
      if (missingUntil > this.#now()) {
        return Promise.reject(
          new CseError('KeyNotFound', `Key Vault key ${keyId} does not exist (looked up recently)`),
        );
      }
      this.#notFound.delete(pendingKey);
    }
    let pending = this.#pending.get(pendingKey);
    if (pending === undefined) {
      pending = this.gate
        .run('get key', () => this.#client.getKey(name, version === undefined ? {} : { version }))
        .catch((error: unknown) => {
          const mapped = mapKeyVaultError(error, 'get key', keyId);
          if (mapped.code === 'KeyNotFound') this.#rememberNotFound(pendingKey);
          throw mapped;
        })
        .finally(() => this.#pending.delete(pendingKey));
      this.#pending.set(pendingKey, pending);
    }
    return pending;
  }

  #rememberNotFound(pendingKey: string): void {
    if (this.#notFoundTtlMs <= 0) return;
    this.#notFound.delete(pendingKey);
    this.#notFound.set(pendingKey, this.#now() + this.#notFoundTtlMs);
    while (this.#notFound.size > this.#maxVersions) {
      this.#notFound.delete(this.#notFound.keys().next().value as string);
    }
  }
}

/** One Key Vault key version as a KeyEncryptionKey. */
export class KeyVaultKek implements KeyEncryptionKey {
  readonly keyId: string;
  readonly version: string;
  readonly name: string;
  readonly defaultAlgorithm: WrapAlgorithm;
  readonly #vault: Vault;
  readonly #family: KeyFamily;
  #material: KeyVaultKey;
  #fetchedAt: number;
  #publicKey: KeyObject | undefined;
  #remote: CryptographyClient | undefined;
  /** Set once a remote call on `#remote` succeeded: its challenge authentication is done. */
  #remoteAuthenticated = false;
  /** The call running alone until then. */
  #firstRemoteCall: Promise<unknown> | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(vault: Vault, name: string, version: string, bundle: KeyVaultKey, fetchedAt: number) {
    this.#vault = vault;
    this.name = name;
    this.version = version;
    this.keyId = `${vault.vaultUrl}/keys/${this.name}/${this.version}`;
    const keyType = bundle.key?.kty ?? bundle.keyType ?? '';
    this.#family = familyOf(keyType, this.keyId);
    this.defaultAlgorithm = this.#family === 'rsa' ? 'RSA-OAEP-256' : 'A256KW';
    this.#material = bundle;
    this.#fetchedAt = fetchedAt;
  }

  /** Key Vault's attributes of this version as last fetched (enabled, notBefore, expiresOn, ...). */
  get properties(): KeyVaultKey['properties'] {
    return this.#material.properties;
  }

  updateMaterial(bundle: KeyVaultKey, fetchedAt: number): void {
    this.#material = bundle;
    this.#fetchedAt = fetchedAt;
  }

  /**
   * Fails unless Key Vault would accept a wrapKey with this version now (refreshing stale material first).
   * Used by wrapKey, and by the key ring so that a disabled or expired active key is reported before any upload.
   */
  async assertCanWrap(): Promise<void> {
    await this.#refreshIfStale();
    const { enabled, notBefore, expiresOn } = this.#material.properties;
    const now = this.#vault.now();
    const refuse = (why: string): never => {
      throw new CseError('InvalidKey', `Key Vault key ${this.keyId} ${why}; it cannot wrap new content keys`);
    };
    if (enabled === false) refuse('is disabled');
    if (notBefore !== undefined && now < notBefore.getTime()) refuse(`is not valid before ${notBefore.toISOString()}`);
    if (expiresOn !== undefined && now > expiresOn.getTime()) refuse(`expired at ${expiresOn.toISOString()}`);
    const ops = this.#material.keyOperations ?? this.#material.key?.keyOps;
    if (ops !== undefined && !ops.includes('wrapKey')) refuse('does not permit the wrapKey operation');
  }

  async wrapKey(algorithm: WrapAlgorithm, key: Uint8Array): Promise<Buffer> {
    this.#requireAlgorithm(algorithm);
    await this.assertCanWrap();
    if (this.#family === 'rsa') {
      // RSA-OAEP (SHA-1) and RSA-OAEP-256 (SHA-256, MGF1-SHA-256), empty label: what Key Vault computes.
      const oaepHash = algorithm === 'RSA-OAEP' ? 'sha1' : 'sha256';
      try {
        return publicEncrypt({ key: this.#rsaPublicKey(), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, key);
      } catch (error) {
        if (error instanceof CseError) throw error;
        throw new CseError('InvalidKey', `${algorithm} cannot wrap ${key.length} bytes with ${this.keyId}`);
      }
    }
    // AES key wrap (Managed HSM oct-HSM keys): the key never leaves the HSM, so the wrap is remote.
    const result = await this.#callRemote('wrapKey', (client) => client.wrapKey(algorithm, key));
    return Buffer.from(result.result);
  }

  async unwrapKey(algorithm: WrapAlgorithm, wrappedKey: Uint8Array): Promise<Buffer> {
    this.#requireAlgorithm(algorithm);
    return this.#vault.cekCache.getOrUnwrap(this.keyId, algorithm, wrappedKey, async () => {
      const result = await this.#callRemote('unwrapKey', (client) => client.unwrapKey(algorithm, wrappedKey));
      return Buffer.from(result.result);
    });
  }

  async #callRemote<T>(
    operation: 'wrapKey' | 'unwrapKey',
    call: (client: CryptographyClient) => Promise<T>,
  ): Promise<T> {
    const client = this.#remoteClient();
    try {
      return await this.#vault.gate.run(operation, () => this.#oneAtATimeUntilAuthenticated(() => call(client)));
    } catch (error) {
      throw mapKeyVaultError(error, operation, this.keyId);
    }
  }

  /**
   * @azure/keyvault-common's challenge policy sends a fresh client's first request without its body and restores
   * the body when the 401 comes back, but only while no other request of that client has completed the challenge
   * meanwhile; otherwise the first request is re-sent authenticated but empty, and Key Vault answers 400, which
   * reads as "cannot unwrap" (test/shared/keys/keyVaultChallengeRace.test.ts). So a client's remote calls run one
   * at a time until one has succeeded; after that they run concurrently.
   */
  async #oneAtATimeUntilAuthenticated<T>(run: () => Promise<T>): Promise<T> {
    while (!this.#remoteAuthenticated && this.#firstRemoteCall !== undefined) {
      await this.#firstRemoteCall.catch(() => undefined);
    }
    if (this.#remoteAuthenticated) return run();
    // Started synchronously after the check, so exactly one waiter becomes the next first call.
    const attempt = run();
    this.#firstRemoteCall = attempt;
    try {
      const result = await attempt;
      this.#remoteAuthenticated = true;
      return result;
    } finally {
      if (this.#firstRemoteCall === attempt) this.#firstRemoteCall = undefined;
    }
  }

  #remoteClient(): CryptographyClient {
    if (this.#remote === undefined) {
      // The deliberate bypass of CryptographyClient's client-side validity check (see the module comment).
      const bundle = this.#material;
      // The id is ours too: the client sends its requests to the vault named in `id`, which must be the
      // allow-listed vault we called, not whatever `kid` the response carried.
      const serviceDecides: KeyVaultKey = {
        ...bundle,
        id: this.keyId,
        name: this.name,
        keyOperations: undefined,
        properties: {
          ...bundle.properties,
          id: this.keyId,
          name: this.name,
          vaultUrl: this.#vault.vaultUrl,
          version: this.version,
          notBefore: undefined,
          expiresOn: undefined,
        },
      };
      this.#remote = new CryptographyClient(serviceDecides, this.#vault.credential, this.#vault.clientOptions());
    }
    return this.#remote;
  }

  #rsaPublicKey(): KeyObject {
    if (this.#publicKey === undefined) {
      const jwk = this.#material.key;
      if (jwk?.n === undefined || jwk.e === undefined) {
        throw new CseError('InvalidKey', `Key Vault returned no public key for ${this.keyId}`);
      }
      try {
        this.#publicKey = createPublicKey({
          key: { kty: 'RSA', n: Buffer.from(jwk.n).toString('base64url'), e: Buffer.from(jwk.e).toString('base64url') },
          format: 'jwk',
        });
      } catch {
        throw new CseError('InvalidKey', `Key Vault returned an unusable RSA public key for ${this.keyId}`);
      }
    }
    return this.#publicKey;
  }

  async #refreshIfStale(): Promise<void> {
    if (!this.#vault.isStale(this.#fetchedAt)) return;
    if (this.#refreshing === undefined) {
      this.#refreshing = this.#vault
        .fetch(this.name, this.version)
        .then((bundle) => this.updateMaterial(bundle, this.#vault.now()))
        .finally(() => {
          this.#refreshing = undefined;
        });
    }
    await this.#refreshing;
  }

  #requireAlgorithm(algorithm: WrapAlgorithm): void {
    const ok =
      this.#family === 'rsa' ? algorithm === 'RSA-OAEP' || algorithm === 'RSA-OAEP-256' : algorithm === 'A256KW';
    if (!ok) {
      const kind = this.#family === 'rsa' ? 'an RSA key' : 'an AES key';
      throw new CseError('UnsupportedAlgorithm', `Key Vault key ${this.keyId} is ${kind}; it cannot do ${algorithm}`);
    }
  }
}

function familyOf(keyType: string, keyId: string): KeyFamily {
  switch (keyType) {
    case 'RSA':
    case 'RSA-HSM':
      return 'rsa';
    case 'oct':
    case 'oct-HSM':
      return 'aes';
    default:
      throw new CseError(
        'InvalidKey',
        `Key Vault key ${keyId} has type ${quote(keyType)}; key wrapping needs an RSA key (or an oct-HSM key in Managed HSM)`,
      );
  }
}

interface RestErrorLike {
  statusCode?: number;
  code?: string;
  message: string;
  details?: { error?: { code?: string; message?: string } };
}

/** Turns what the SDK throws into a CseError with a code callers can act on. Messages carry no key material. */
export function mapKeyVaultError(error: unknown, operation: string, keyId: string): CseError {
  if (error instanceof CseError) return error;
  const e = (error instanceof Error ? error : new Error(String(error))) as Error & RestErrorLike;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const serviceCode = e.details?.error?.code ?? e.code;
  const serviceMessage = e.details?.error?.message ?? e.message;
  const detail = `${status ?? 'no response'}${serviceCode ? ` ${serviceCode}` : ''}: ${oneLine(serviceMessage)}`;
  if (status === 404) {
    return new CseError('KeyNotFound', `Key Vault key ${keyId} does not exist (${detail})`, { cause: error });
  }
  if (status === 400 && operation === 'unwrapKey') {
    // Key Vault answers 400 when the wrapped key does not decrypt under this key: wrong key or tampered data.
    return new CseError('IntegrityCheckFailed', `Key Vault could not unwrap with ${keyId} (${detail})`, {
      cause: error,
    });
  }
  if (status === 400) {
    return new CseError('InvalidKey', `Key Vault refused ${operation} with ${keyId} (${detail})`, { cause: error });
  }
  if (status === 401 || status === 403) {
    return new CseError('KeyUnavailable', `Key Vault denied ${operation} on ${keyId} (${detail})`, { cause: error });
  }
  if (status !== undefined) {
    return new CseError('KeyUnavailable', `Key Vault failed ${operation} on ${keyId} (${detail})`, { cause: error });
  }
  // No HTTP response: network failure, TLS, token acquisition.
  const name = e.name && e.name !== 'Error' ? `${e.name}: ` : '';
  return new CseError(
    'KeyUnavailable',
    `cannot reach Key Vault for ${operation} on ${keyId} (${name}${oneLine(e.message)})`,
    {
      cause: error,
    },
  );
}

function oneLine(text: string | undefined): string {
  const flat = (text ?? '').replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
}
