/**
 * The app's keys: the active key (CSE_KEY_ID) for new writes and rotation, and a resolver for the key ids found
 * in stored metadata.
 *
 * Stored key ids are untrusted (anyone who can write to the storage account writes them), so the resolver only
 * resolves what the configuration allows, and decides that before any network activity:
 *  - a local kid must be a key of the CSE_LOCAL_KEYS JWK Set;
 *  - a Key Vault key id must be well formed and its vault host listed in CSE_ALLOWED_KEY_VAULTS.
 * Anything else fails with CseError 'KeyNotAllowed'; no connection is opened and no token is requested for it.
 */
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import type { KeyClientOptions } from '@azure/keyvault-keys';
import { CseError } from '../errors';
import type { KeyEncryptionKey, KeyResolver } from './kek';
import { parseKeyId, quote, type KeyId, type KeyVaultKeyId } from './keyId';
import { loadLocalKeys, type LocalKeyRing } from './localKeys';
import { UnwrappedKeyCache, type CekCacheOptions } from './cekCache';
import { KeyVaultKeys, type KeyVaultKek } from './keyVault';
import type { ThrottleOptions } from './throttle';

/** What the key ring needs from the configuration (CseConfig from shared/config/config.ts has these members). */
export interface KeyRingConfig {
  /** CSE_KEY_ID, parsed. */
  readonly keyId: KeyId;
  /** CSE_LOCAL_KEYS. */
  readonly localKeysPath: string | undefined;
  /** CSE_ALLOWED_KEY_VAULTS (normalised hosts; the loader defaults it to the vault of CSE_KEY_ID). */
  readonly allowedKeyVaults: readonly string[];
  /** AZURE_CLIENT_ID: the user-assigned managed identity used for Key Vault. */
  readonly azureClientId?: string | undefined;
}

export interface KeyRingOptions {
  /** Token credential for Key Vault. Default: see `createKeyVaultCredential`. */
  readonly credential?: TokenCredential;
  /** Extra KeyClient/CryptographyClient options; production leaves this unset (tests: the stand-in's options). */
  readonly keyVaultClientOptions?: KeyClientOptions;
  /** Already loaded local keys (otherwise read from `config.localKeysPath`). */
  readonly localKeys?: LocalKeyRing;
  readonly cekCache?: CekCacheOptions;
  /** How long fetched key material is used before it is fetched again (default 10 min). */
  readonly keyMaterialTtlMs?: number;
  /** How long the current version of a versionless key id is used before it is looked up again (default 60 s). */
  readonly currentVersionTtlMs?: number;
  readonly throttle?: ThrottleOptions;
  /** Clock, for tests. */
  readonly now?: () => number;
}

export interface KeyRing {
  /** Resolves stored key ids; refuses (KeyNotAllowed) anything the configuration does not allow. */
  readonly resolver: KeyResolver;
  /** CSE_KEY_ID as configured (for a versionless Key Vault id, `activeKey()` gives the versioned key). */
  readonly activeKeyId: KeyId;
  /**
   * The key for new writes: its keyId is what gets stored (always versioned for Key Vault). For a versionless
   * CSE_KEY_ID this is the current version, looked up at most every `currentVersionTtlMs`, or now with
   * `refresh: true` (a rotation fixes its target this way). Fails if the key cannot wrap (disabled, expired).
   */
  activeKey(options?: { refresh?: boolean }): Promise<KeyEncryptionKey>;
  /** Like activeKey, for another allowed key id (a rotation's explicit target). */
  keyForWriting(keyId: string, options?: { refresh?: boolean }): Promise<KeyEncryptionKey>;
  /** Parses and checks a key id against the allow-list without resolving it. Throws KeyNotAllowed. */
  checkAllowed(keyId: string): KeyId;
}

/**
 * Builds the key ring. Fails (CseError 'ConfigurationError') if the active key is not allowed: a Key Vault key
 * outside CSE_ALLOWED_KEY_VAULTS, or a local kid without CSE_LOCAL_KEYS or missing from that file. Does not
 * contact Key Vault (a vault outage must not stop start-up; the first write reports it).
 */
export async function createKeyRing(config: KeyRingConfig, options: KeyRingOptions = {}): Promise<KeyRing> {
  const allowedVaults = new Set(config.allowedKeyVaults);
  const active = config.keyId;
  if (active.kind === 'keyVault' && !allowedVaults.has(active.host)) {
    throw new CseError(
      'ConfigurationError',
      `CSE_KEY_ID: its vault ${active.host} is not in CSE_ALLOWED_KEY_VAULTS (${[...allowedVaults].join(', ') || 'empty'})`,
    );
  }
  if (active.kind === 'local' && config.localKeysPath === undefined && options.localKeys === undefined) {
    throw new CseError(
      'ConfigurationError',
      `CSE_KEY_ID: ${quote(active.id)} is a local key id but CSE_LOCAL_KEYS is not set`,
    );
  }
  const localKeys =
    options.localKeys ?? (config.localKeysPath === undefined ? undefined : await loadLocalKeys(config.localKeysPath));
  if (active.kind === 'local' && localKeys?.get(active.id) === undefined) {
    throw new CseError(
      'ConfigurationError',
      `CSE_KEY_ID: no key with id ${quote(active.id)} in CSE_LOCAL_KEYS (${config.localKeysPath ?? 'the given key set'})`,
    );
  }

  let keyVault: KeyVaultKeys | undefined;
  const keyVaultKeys = (): KeyVaultKeys => {
    // Created on first use: a local-only configuration never builds a credential.
    keyVault ??= new KeyVaultKeys({
      credential: options.credential ?? createKeyVaultCredential(config.azureClientId),
      clientOptions: options.keyVaultClientOptions,
      cekCache: new UnwrappedKeyCache({ now: options.now, ...options.cekCache }),
      keyMaterialTtlMs: options.keyMaterialTtlMs,
      currentVersionTtlMs: options.currentVersionTtlMs,
      throttle: options.throttle,
      now: options.now,
    });
    return keyVault;
  };

  const checkAllowed = (keyId: string): KeyId => {
    const parsed = parseKeyId(keyId);
    if (!parsed.ok) throw new CseError('KeyNotAllowed', `key id not allowed: ${parsed.reason}`);
    const id = parsed.keyId;
    if (id.kind === 'local') {
      if (localKeys?.get(id.id) === undefined) {
        throw new CseError('KeyNotAllowed', `key id ${quote(id.id)} is not a key in CSE_LOCAL_KEYS`);
      }
    } else if (!allowedVaults.has(id.host)) {
      throw new CseError('KeyNotAllowed', `key id ${quote(keyId)}: vault ${id.host} is not in CSE_ALLOWED_KEY_VAULTS`);
    }
    return id;
  };

  const keyFor = async (id: KeyId, refresh: boolean): Promise<KeyEncryptionKey> => {
    if (id.kind === 'local') return localKeys?.get(id.id) as KeyEncryptionKey;
    return keyVaultKeys().key(id, { refresh });
  };

  const writingKey = async (id: KeyId, refresh: boolean): Promise<KeyEncryptionKey> => {
    if (id.kind === 'local') return keyFor(id, refresh);
    const key: KeyVaultKek = await keyVaultKeys().key(id, { refresh });
    await key.assertCanWrap();
    return key;
  };

  return {
    resolver: { resolve: async (keyId: string) => keyFor(checkAllowed(keyId), false) },
    activeKeyId: active,
    activeKey: async (opts = {}) => writingKey(active, opts.refresh ?? false),
    keyForWriting: async (keyId, opts = {}) => writingKey(checkAllowed(keyId), opts.refresh ?? false),
    checkAllowed,
  };
}

/**
 * The Key Vault credential: the user-assigned managed identity named by AZURE_CLIENT_ID when it is set (what the
 * Bicep templates configure), else DefaultAzureCredential (system-assigned identity in Azure; `az login`, VS
 * Code, environment credentials locally).
 */
export function createKeyVaultCredential(azureClientId: string | undefined): TokenCredential {
  return azureClientId === undefined
    ? new DefaultAzureCredential()
    : new ManagedIdentityCredential({ clientId: azureClientId });
}

export type { KeyVaultKeyId };
