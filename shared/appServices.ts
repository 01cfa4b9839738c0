/**
 * The app's long-lived services, built once per process from the app settings on first use, and shared by every
 * function family: configuration, key ring, Storage clients and the encrypted blob store. Nothing here depends
 * on @azure/functions. (functions/index.ts checks the settings and builds these once at start-up, so a bad
 * setting stops the app there; building on first use keeps tests and other hosts free of load-order concerns.)
 *
 * A failed build is not cached, so a transient failure heals on the next request; a successful one lives as long
 * as the process (key material and Storage connections are reused across invocations).
 */
import type { BlobServiceClient } from '@azure/storage-blob';
import { loadConfig, type CseConfig } from './config/config';
import { createKeyRing, type KeyRing } from './keys/keyRing';
import { createStorageClients, type StorageClients } from './storage/connection';
import { ContainerPolicy } from './storage/containerPolicy';
import { EncryptedBlobStore } from './storage/encryptedBlobStore';

export interface AppServices {
  readonly config: CseConfig;
  /** Wraps new content keys with the active key (CSE_KEY_ID) and resolves stored key ids (allow-listed). */
  readonly keyRing: KeyRing;
  /** Blob, queue and table clients of AzureWebJobsStorage (one account, one identity, shared connections). */
  readonly storage: StorageClients;
  /** `storage.blob`: the account whose containers CSE_CONTAINERS names. */
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
  const storage = createStorageClients(config.storage);
  const blobService = storage.blob;
  const containers = ContainerPolicy.fromAllowList(config.containers);
  const blobStore = new EncryptedBlobStore(blobService, keyRing, {
    containers,
    allowV1: config.allowV1,
    allowPlaintextReads: config.allowPlaintextReads,
  });
  return { config, keyRing, storage, blobService, containers, blobStore };
}
