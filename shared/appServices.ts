/**
 * The app's long-lived services, built once per process from the app settings on first use (not at module load:
 * a bad setting then fails the request that needs it with a clear error instead of failing registration), and
 * shared by every function family: configuration, key ring, Storage clients, the encrypted blob store.
 *
 * A failed build is not cached, so a transient failure (e.g. Key Vault unreachable at start) heals on the next
 * request.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { CseError } from './errors';
import type { KeyEncryptionKey, KeyResolver } from './keys/kek';
import { loadLocalKeys } from './keys/localKeys';
import { ContainerPolicy } from './storage/containerPolicy';
import { EncryptedBlobStore, type BlobKeys } from './storage/encryptedBlobStore';

/** Settings this module reads (interim: replaced by shared/config/config.ts once it lands). */
export interface AppConfig {
  readonly keyId: string;
  readonly localKeysPath: string | undefined;
  readonly allowV1: boolean;
  readonly allowPlaintextReads: boolean;
  readonly containers: ContainerPolicy;
  readonly storageConnectionString: string;
}

export interface AppServices {
  readonly config: AppConfig;
  /** Wraps new content keys with the active key (CSE_KEY_ID) and resolves stored key ids. */
  readonly keyRing: BlobKeys;
  readonly blobService: BlobServiceClient;
  readonly blobStore: EncryptedBlobStore;
}

let pending: Promise<AppServices> | undefined;

/** The process-wide services (built on first call). */
export function getAppServices(): Promise<AppServices> {
  pending ??= buildAppServices(process.env).catch((e: unknown) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

/** Drops the cached services (tests that change settings within one process). */
export function resetAppServices(): void {
  pending = undefined;
}

export async function buildAppServices(env: NodeJS.ProcessEnv): Promise<AppServices> {
  const config = readConfig(env);
  const keyRing = await createInterimKeyRing(config);
  const blobService = BlobServiceClient.fromConnectionString(config.storageConnectionString);
  const blobStore = new EncryptedBlobStore(blobService, keyRing, {
    containers: config.containers,
    allowV1: config.allowV1,
    allowPlaintextReads: config.allowPlaintextReads,
  });
  return { config, keyRing, blobService, blobStore };
}

function readConfig(env: NodeJS.ProcessEnv): AppConfig {
  const storage = env.AzureWebJobsStorage;
  if (!storage) throw new CseError('ConfigurationError', 'AzureWebJobsStorage is not set.');
  const keyId = env.CSE_KEY_ID;
  if (!keyId) throw new CseError('ConfigurationError', 'CSE_KEY_ID is not set.');
  return {
    keyId,
    localKeysPath: env.CSE_LOCAL_KEYS || undefined,
    allowV1: env.CSE_ALLOW_V1?.toLowerCase() === 'true',
    allowPlaintextReads: env.CSE_ALLOW_PLAINTEXT_READS?.toLowerCase() === 'true',
    containers: ContainerPolicy.fromSetting(env.CSE_CONTAINERS),
    storageConnectionString: storage,
  };
}

async function createInterimKeyRing(config: AppConfig): Promise<BlobKeys> {
  if (config.localKeysPath === undefined) throw new CseError('ConfigurationError', 'CSE_LOCAL_KEYS is not set.');
  const ring = await loadLocalKeys(config.localKeysPath);
  const resolver: KeyResolver = ring;
  return {
    resolver,
    activeKey: async (): Promise<KeyEncryptionKey> => {
      const kek = ring.get(config.keyId);
      if (kek === undefined) throw new CseError('KeyNotFound', 'The active key (CSE_KEY_ID) is not in CSE_LOCAL_KEYS.');
      return kek;
    },
  };
}
