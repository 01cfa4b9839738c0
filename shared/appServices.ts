/**
 * The app's long-lived services, built once per process from the app settings on first use (not at module load:
 * a bad setting then fails the request that needs it with a clear ConfigurationError instead of failing function
 * registration), and shared by every function family: configuration, key ring, Storage clients and the
 * encrypted blob store. Nothing here depends on @azure/functions.
 *
 * A failed build is not cached, so a transient failure heals on the next request; a successful one lives as long
 * as the process (key material and Storage connections are reused across invocations).
 */
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import {
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  type TokenCredential,
} from '@azure/identity';
import { loadConfig, type CseConfig } from './config/config';
import type { StorageSetting } from './config/storageSetting';
import { createKeyRing, type KeyRing } from './keys/keyRing';
import { ContainerPolicy } from './storage/containerPolicy';
import { EncryptedBlobStore } from './storage/encryptedBlobStore';

export interface AppServices {
  readonly config: CseConfig;
  /** Wraps new content keys with the active key (CSE_KEY_ID) and resolves stored key ids (allow-listed). */
  readonly keyRing: KeyRing;
  /** Blob service of AzureWebJobsStorage (the account whose containers CSE_CONTAINERS names). */
  readonly blobService: BlobServiceClient;
  /** CSE_CONTAINERS, never the host's own containers. */
  readonly containers: ContainerPolicy;
  readonly blobStore: EncryptedBlobStore;
}

export type Env = Record<string, string | undefined>;

let pending: Promise<AppServices> | undefined;

/** The process-wide services (built on first call from `process.env`). */
export function getAppServices(): Promise<AppServices> {
  pending ??= buildAppServices(process.env).catch((e: unknown) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

/** Drops the cached services (for tests that change settings within one process). */
export function resetAppServices(): void {
  pending = undefined;
}

/** Builds a fresh set of services from settings (no caching). */
export async function buildAppServices(env: Env): Promise<AppServices> {
  const config = loadConfig(env);
  const keyRing = await createKeyRing(config);
  const blobService = createBlobServiceClient(config.storage, config.azureClientId);
  const containers = ContainerPolicy.fromAllowList(config.containers);
  const blobStore = new EncryptedBlobStore(blobService, keyRing, {
    containers,
    allowV1: config.allowV1,
    allowPlaintextReads: config.allowPlaintextReads,
  });
  return { config, keyRing, blobService, containers, blobStore };
}

/** A Blob service client for AzureWebJobsStorage: account key, SAS, or an Entra identity. */
export function createBlobServiceClient(storage: StorageSetting, azureClientId?: string): BlobServiceClient {
  if (storage.kind === 'connectionString') {
    if (storage.auth.kind === 'accountKey') {
      const credential = new StorageSharedKeyCredential(storage.accountName, storage.auth.accountKey.reveal());
      return new BlobServiceClient(storage.endpoints.blob, credential);
    }
    const sas = storage.auth.sas.reveal().replace(/^\?/, '');
    return new BlobServiceClient(`${storage.endpoints.blob}?${sas}`);
  }
  return new BlobServiceClient(storage.endpoints.blob, identityCredential(storage, azureClientId));
}

function identityCredential(
  storage: Extract<StorageSetting, { kind: 'identity' }>,
  azureClientId?: string,
): TokenCredential {
  const c = storage.credential;
  switch (c.kind) {
    case 'managedIdentity':
      if (c.clientId !== undefined) return new ManagedIdentityCredential({ clientId: c.clientId });
      if (c.resourceId !== undefined) return new ManagedIdentityCredential({ resourceId: c.resourceId });
      if (c.objectId !== undefined) return new ManagedIdentityCredential({ objectId: c.objectId });
      return azureClientId
        ? new ManagedIdentityCredential({ clientId: azureClientId })
        : new ManagedIdentityCredential();
    case 'default':
      return new DefaultAzureCredential({
        ...(c.tenantId ? { tenantId: c.tenantId } : {}),
        ...(c.managedIdentityClientId ? { managedIdentityClientId: c.managedIdentityClientId } : {}),
      });
    case 'clientSecret':
      return new ClientSecretCredential(c.tenantId, c.clientId, c.clientSecret.reveal());
  }
}
