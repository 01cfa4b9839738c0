/**
 * The app's Storage clients, built from the AzureWebJobsStorage setting (shared/config/storageSetting.ts reads it
 * exactly as the Functions host does), so that the app and the host's triggers use one account and one identity.
 *
 * Clients are created from explicit endpoints and a credential (never by handing the connection string to each
 * SDK: the three SDKs parse connection strings differently from each other and from the host, e.g. the JS blob
 * SDK treats an account-key string without DefaultEndpointsProtocol as a SAS string):
 *  - account key: StorageSharedKeyCredential (blob, queue), AzureNamedKeyCredential (tables);
 *  - SAS: appended to the blob/queue service URL, AzureSASCredential for tables;
 *  - identity-based: a TokenCredential (managed identity with the configured client id, a service principal,
 *    or DefaultAzureCredential), the same choice the host makes.
 * `@azure/data-tables` refuses plain-http endpoints (Azurite) unless `allowInsecureConnection` is set, so it is
 * set exactly when the table endpoint is http.
 */
import {
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  type TokenCredential,
} from '@azure/identity';
import {
  BlobServiceClient,
  StorageSharedKeyCredential as BlobSharedKeyCredential,
  type StoragePipelineOptions as BlobPipelineOptions,
} from '@azure/storage-blob';
import {
  QueueServiceClient,
  StorageSharedKeyCredential as QueueSharedKeyCredential,
  type StoragePipelineOptions as QueuePipelineOptions,
} from '@azure/storage-queue';
import {
  AzureNamedKeyCredential,
  AzureSASCredential,
  TableClient,
  TableServiceClient,
  type TableServiceClientOptions,
} from '@azure/data-tables';
import type { StorageCredentialSetting, StorageSetting } from '../config/storageSetting';

export interface StorageClientOptions {
  /** Replaces the credential of an identity-based setting (tests). Ignored for connection strings. */
  readonly credential?: TokenCredential;
  readonly blob?: BlobPipelineOptions;
  readonly queue?: QueuePipelineOptions;
  readonly table?: TableServiceClientOptions;
}

export interface StorageClients {
  readonly blob: BlobServiceClient;
  readonly queue: QueueServiceClient;
  readonly table: TableServiceClient;
  /** A client for one table (same account, credential and options as `table`). */
  tableClient(tableName: string): TableClient;
  /** The account's service endpoints (no secrets), for logs. */
  readonly endpoints: StorageSetting['endpoints'];
}

/** Builds blob, queue and table clients for the configured account. Makes no network call. */
export function createStorageClients(setting: StorageSetting, options: StorageClientOptions = {}): StorageClients {
  const { endpoints } = setting;
  const tableOptions: TableServiceClientOptions = {
    ...options.table,
    ...(endpoints.table.startsWith('http://') ? { allowInsecureConnection: true } : {}),
  };

  if (setting.kind === 'identity') {
    const credential = options.credential ?? createStorageCredential(setting.credential);
    return {
      blob: new BlobServiceClient(endpoints.blob, credential, options.blob),
      queue: new QueueServiceClient(endpoints.queue, credential, options.queue),
      table: new TableServiceClient(endpoints.table, credential, tableOptions),
      tableClient: (name) => new TableClient(endpoints.table, name, credential, tableOptions),
      endpoints,
    };
  }

  if (setting.auth.kind === 'accountKey') {
    const key = setting.auth.accountKey.reveal();
    const tableCredential = new AzureNamedKeyCredential(setting.accountName, key);
    return {
      blob: new BlobServiceClient(endpoints.blob, new BlobSharedKeyCredential(setting.accountName, key), options.blob),
      queue: new QueueServiceClient(
        endpoints.queue,
        new QueueSharedKeyCredential(setting.accountName, key),
        options.queue,
      ),
      table: new TableServiceClient(endpoints.table, tableCredential, tableOptions),
      tableClient: (name) => new TableClient(endpoints.table, name, tableCredential, tableOptions),
      endpoints,
    };
  }

  const sas = setting.auth.sas.reveal();
  const tableCredential = new AzureSASCredential(sas);
  return {
    blob: new BlobServiceClient(`${endpoints.blob}?${sas}`, undefined, options.blob),
    queue: new QueueServiceClient(`${endpoints.queue}?${sas}`, undefined, options.queue),
    table: new TableServiceClient(endpoints.table, tableCredential, tableOptions),
    tableClient: (name) => new TableClient(endpoints.table, name, tableCredential, tableOptions),
    endpoints,
  };
}

/**
 * The credential of the identity-based form, as the host builds it (Microsoft.Extensions.Azure
 * ClientFactory.CreateCredential): managed identity, service principal, or DefaultAzureCredential.
 */
export function createStorageCredential(setting: StorageCredentialSetting): TokenCredential {
  switch (setting.kind) {
    case 'managedIdentity':
      if (setting.resourceId !== undefined) return new ManagedIdentityCredential({ resourceId: setting.resourceId });
      if (setting.objectId !== undefined) return new ManagedIdentityCredential({ objectId: setting.objectId });
      return setting.clientId !== undefined
        ? new ManagedIdentityCredential({ clientId: setting.clientId })
        : new ManagedIdentityCredential();
    case 'clientSecret':
      return new ClientSecretCredential(setting.tenantId, setting.clientId, setting.clientSecret.reveal());
    case 'default':
      return new DefaultAzureCredential({
        ...(setting.tenantId !== undefined ? { tenantId: setting.tenantId } : {}),
        ...(setting.managedIdentityResourceId !== undefined
          ? { managedIdentityResourceId: setting.managedIdentityResourceId }
          : setting.managedIdentityClientId !== undefined
            ? { managedIdentityClientId: setting.managedIdentityClientId }
            : {}),
      });
  }
}
