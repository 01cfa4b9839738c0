// Storage: one hardened account for both the Functions host and the app's data. No account keys (shared key
// access is off, so SAS tokens and connection strings with keys cannot work at all), no anonymous blob access,
// HTTPS with TLS 1.2 or later only. Everything reaches it with Entra ID through role assignments.

@description('Azure region of the storage account.')
param location string

@description('Tags applied to the storage account.')
param tags object

@description('Name of the storage account (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string

@description('Blob containers to create: the Flex Consumption deployment package container, the landing container and the encrypted target container.')
param containerNames array

@description('Queues to create: the app\'s queues and the poison queues to monitor.')
param queueNames array

@description('Tables to create (the rotation progress table).')
param tableNames array

@description('Days deleted blobs and containers stay recoverable (soft delete); 0 turns soft delete off.')
@minValue(0)
@maxValue(365)
param softDeleteRetentionDays int

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    // No account keys: the host, the app, Event Grid and people all use Entra ID.
    allowSharedKeyAccess: false
    // The portal and tools default to Entra ID instead of trying keys first.
    defaultToOAuthAuthentication: true
    // Never serve anonymous reads, whatever a container's access level says.
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // Object replication to accounts in other tenants is a data exfiltration path nobody here needs.
    allowCrossTenantReplication: false
    networkAcls: {
      // No virtual network in this template: the Flex Consumption app reaches storage over its public endpoint,
      // authenticated with Entra ID. See docs/DEPLOY.md for locking it down with private endpoints.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // Soft delete keeps deleted or overwritten blobs (and deleted containers) recoverable for a while. Blob
    // versioning stays off on purpose: every metadata write (each key rotation re-wrap) would leave a version
    // whose metadata can never be re-wrapped again (docs/DEPLOY.md, "Rollback").
    deleteRetentionPolicy: {
      enabled: softDeleteRetentionDays > 0
      // 1..365 even when off (the service rejects 0).
      days: max(softDeleteRetentionDays, 1)
    }
    containerDeleteRetentionPolicy: {
      enabled: softDeleteRetentionDays > 0
      // 1..365 even when off (the service rejects 0).
      days: max(softDeleteRetentionDays, 1)
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

@description('Name of the storage account.')
output name string = account.name

@description('Resource id of the storage account.')
output id string = account.id

@description('Blob service endpoint, e.g. https://<account>.blob.core.windows.net/.')
output blobEndpoint string = account.properties.primaryEndpoints.blob
