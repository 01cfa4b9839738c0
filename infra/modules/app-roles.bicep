// Role assignments for the app's user-assigned identity (and, optionally, a human operator). Least privilege: data
// plane roles only, each at the narrowest scope the code can work with. The Event Grid topics' own roles are in
// system-topic-to-queue.bicep.

@description('Principal (object) id of the app\'s user-assigned managed identity.')
param appPrincipalId string

@description('Name of the storage account the host and the app use.')
param storageAccountName string

@description('Name of the Key Vault holding the key-encryption key.')
param keyVaultName string

@description('Name of the key-encryption key; the app may use this key and no other.')
param keyName string

@description('Name of the Application Insights component the app sends telemetry to.')
param appInsightsName string

@description('Object id of an operator (user, group or service principal) who gets Key Vault Crypto Officer on the vault; empty for none.')
param operatorPrincipalId string

@description('Kind of principal operatorPrincipalId names.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string

// Built-in role definition ids (the same in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var keyVaultCryptoUser = '12338af0-0e69-4776-bea7-57ae8d297424'
var keyVaultCryptoOfficer = '14b46e9e-c2b7-41b4-b07b-48a6ebf60603'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource kek 'Microsoft.KeyVault/vaults/keys@2023-07-01' existing = {
  parent: vault
  name: keyName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Storage Blob Data Owner on the account: the Functions host needs it for its own blobs (timer schedule status,
// singleton locks, function keys in azure-webjobs-secrets) and the Flex Consumption platform reads the deployment
// package with this identity; the app reads, writes, re-wraps (metadata) and deletes blobs in any container
// CSE_CONTAINERS allows, which may be created on first use, so the account is the narrowest workable scope.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor on the account: the queue triggers (ingest, rotation-jobs, key-events) read and
// delete messages, the app enqueues rotation work items and ingest-done notices, and the host creates and writes
// the <queue>-poison queues.
resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor on the account: rotation progress lives in the rotations table, and the app
// encrypts and re-wraps entities in any table CSE_TABLES allows.
resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Crypto User on the key-encryption key only (not the vault): get the key's public part and versions,
// wrap and unwrap content keys. It cannot create, rotate, delete or purge keys, nor touch other keys or secrets.
resource appKeyCryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(kek.id, appPrincipalId, keyVaultCryptoUser)
  scope: kek
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher on the Application Insights component: with local authentication disabled, the
// component accepts telemetry only from a principal holding this role.
resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Crypto Officer on the vault, for the operator only (optional): with RBAC authorization even the
// subscription owner has no data-plane access, yet someone must be able to rotate on demand, change the rotation
// policy, add a key or recover a deleted one (docs/DEPLOY.md). The app never gets this role.
resource operatorCryptoOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, keyVaultCryptoOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoOfficer)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}
