// azure-cse-functions in production: a Flex Consumption function app that runs as one user-assigned identity, a
// storage account without keys, a Key Vault with a rotating key-encryption key, Event Grid feeding the app's queues,
// and Application Insights with Entra authentication. Resource-group scope:
//   az deployment group create -g <group> -f infra/main.bicep -p environmentName=<name>
//   azd up   (azure.yaml; AZURE_RESOURCE_GROUP names the group)
// docs/DEPLOY.md walks through deployment, the first rotation and rollback. Local modules only (no registry
// modules), so `npm test` can check every file offline (test/infra/).
targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------------------------
// Environment

@description('Name of the environment (azd: AZURE_ENV_NAME). Seeds the unique resource names and the azd-env-name tag.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Azure region of every resource. Defaults to the resource group\'s region.')
param location string = resourceGroup().location

// ---------------------------------------------------------------------------------------------------------------
// Function app (Flex Consumption)

@description('Node.js version of the Functions runtime.')
@allowed([
  '20'
  '22'
])
param nodeVersion string = '22'

@description('Memory per instance in MB (512, 2048 or 4096). Streaming keeps the app\'s memory flat, so 2048 leaves room for concurrency.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of instances. During a rotation Key Vault is the bottleneck (docs/SCALE.md): more instances than the vault\'s throughput can feed only produce throttling.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

// ---------------------------------------------------------------------------------------------------------------
// Storage

@description('Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_LRS'

@description('Days deleted blobs and containers stay recoverable (blob and container soft delete); 0 turns it off.')
@minValue(0)
@maxValue(365)
param softDeleteRetentionDays int = 7

@description('Create an Event Grid system topic on the storage account that sends BlobCreated events of the landing container to the ingest queue, so files dropped there are encrypted automatically.')
param enableLandingIngestion bool = true

// ---------------------------------------------------------------------------------------------------------------
// Key Vault and the key-encryption key

@description('Key Vault SKU: premium holds the key in an HSM (RSA-HSM), standard in software (RSA).')
@allowed([
  'premium'
  'standard'
])
param keyVaultSku string = 'premium'

@description('Days a deleted vault or key stays recoverable (purge protection enforces the whole period). Fixed once the vault exists.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 90

@description('Name of the key-encryption key.')
@minLength(1)
@maxLength(127)
param keyName string = 'cse-kek'

@description('RSA size of the key-encryption key in bits. Key Vault allows fewer operations per second for larger (and HSM) keys, which bounds rotation speed (docs/SCALE.md).')
@allowed([
  2048
  3072
  4096
])
param keySize int = 3072

@description('Rotation policy: Key Vault creates a new key version this long after the current one was created (ISO 8601 duration, at least P7D). Its KeyNewVersionCreated event starts the app\'s re-wrap.')
param keyRotationInterval string = 'P90D'

@description('Rotation policy: expiry of each new key version, counted from its creation (ISO 8601 duration, at least P28D and longer than keyRotationInterval, so the re-wrap finishes long before the old version expires).')
param keyVersionExpiry string = 'P1Y'

@description('Rotation policy: Key Vault raises Microsoft.KeyVault.KeyNearExpiry this long before a version expires (ISO 8601 duration, at least P7D).')
param keyNotifyBeforeExpiry string = 'P30D'

@description('Object id of the person, group or service principal operating this deployment; it gets Key Vault Crypto Officer on the vault (rotate on demand, change the rotation policy, add keys). Empty: nobody. azd passes the signed-in user (AZURE_PRINCIPAL_ID).')
param operatorPrincipalId string = ''

@description('Kind of principal operatorPrincipalId names.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// ---------------------------------------------------------------------------------------------------------------
// App behaviour (the CSE_* settings; defaults equal the code's and local.settings.sample.json's)

@description('CSE_ALLOW_V1: read legacy v1.0 blobs and messages.')
param allowV1 bool = false

@description('CSE_ALLOW_PLAINTEXT_READS: serve blobs that carry no encryption data.')
param allowPlaintextReads bool = false

@description('CSE_CONTAINERS: containers the app may read and write, comma-separated, or * for all but the host\'s own (azure-webjobs-*, which includes the deployment container, and $-prefixed).')
param cseContainers string = '*'

@description('CSE_TABLES: tables the app may use, comma-separated, or *.')
param cseTables string = '*'

@description('CSE_TABLE_PROTOCOL: table write format, 2.0 (authenticated) or legacy 1.0.')
@allowed([
  '2.0'
  '1.0'
])
param tableProtocol string = '2.0'

@description('CSE_TABLE_ENCRYPTED_PROPERTIES: default encrypted properties per table, as table:a,b;other:c. Empty: none.')
param tableEncryptedProperties string = ''

@description('CSE_ROTATION_SCHEDULE: NCRONTAB schedule (six fields, UTC) of the rotation sweep, the fallback for missed Key Vault events.')
param rotationSchedule string = '0 0 3 * * *'

@description('CSE_ROTATION_CONCURRENCY: maximum concurrent re-wraps per worker.')
@minValue(1)
@maxValue(256)
param rotationConcurrency int = 16

@description('CSE_ROTATION_REENCRYPT_V1: rotations started by the schedule or by Key Vault events also re-encrypt legacy v1.0 blobs to v2.0 (the Azure docs ask v1 users to migrate).')
param rotationReencryptV1 bool = false

// ---------------------------------------------------------------------------------------------------------------
// Names

var resourceToken = toLower(uniqueString(resourceGroup().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

// Queues, table and containers the code uses. The <queue>-poison queues would be created by the host on the first
// poison message; creating them now makes them visible (and alertable) from day one. ingest-done has no trigger,
// hence no poison queue.
var ingestQueueName = 'ingest'
var rotationJobsQueueName = 'rotation-jobs'
var keyEventsQueueName = 'key-events'
var ingestDoneQueueName = 'ingest-done'
var queueNames = [
  ingestQueueName
  rotationJobsQueueName
  keyEventsQueueName
  ingestDoneQueueName
  '${ingestQueueName}-poison'
  '${rotationJobsQueueName}-poison'
  '${keyEventsQueueName}-poison'
]
var tableNames = [
  'rotations'
]
var landingContainerName = 'landing'
var encryptedContainerName = 'encrypted'
// Named with the host's azure-webjobs- prefix so that CSE_CONTAINERS=* never lets the blob API read or overwrite
// the deployment package.
var deploymentContainerName = 'azure-webjobs-app-package'

// The HTTP size limit the docs promise: 100 MiB per request body (docs/DEPLOY.md, "Limits in Azure").
var requestBodySizeLimit = 104857600

// ---------------------------------------------------------------------------------------------------------------
// Resources

// The one identity the app uses for everything: host storage, its own data, Key Vault, telemetry, deployment.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    workspaceName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    skuName: storageSku
    containerNames: [
      deploymentContainerName
      landingContainerName
      encryptedContainerName
    ]
    queueNames: queueNames
    tableNames: tableNames
    softDeleteRetentionDays: softDeleteRetentionDays
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    name: 'kv-${resourceToken}'
    skuName: keyVaultSku
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
    keyName: keyName
    keySize: keySize
    rotateAfter: keyRotationInterval
    versionExpiry: keyVersionExpiry
    notifyBeforeExpiry: keyNotifyBeforeExpiry
    workspaceId: monitoring.outputs.workspaceId
  }
}

module appRoles 'modules/app-roles.bicep' = {
  name: 'app-roles'
  params: {
    appPrincipalId: identity.properties.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    keyName: keyVault.outputs.keyName
    appInsightsName: monitoring.outputs.appInsightsName
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  // Start the app once it may use storage and the key, not before.
  dependsOn: [
    appRoles
  ]
  params: {
    location: location
    tags: tags
    planName: 'plan-${resourceToken}'
    appName: 'func-${resourceToken}'
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    nodeVersion: nodeVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    requestBodySizeLimit: requestBodySizeLimit
    keyId: keyVault.outputs.keyUri
    allowedKeyVaults: keyVault.outputs.vaultHost
    allowV1: allowV1
    allowPlaintextReads: allowPlaintextReads
    containers: cseContainers
    tables: cseTables
    tableProtocol: tableProtocol
    tableEncryptedProperties: tableEncryptedProperties
    ingestQueueName: ingestQueueName
    ingestTargetContainerName: encryptedContainerName
    rotationSchedule: rotationSchedule
    rotationConcurrency: rotationConcurrency
    rotationReencryptV1: rotationReencryptV1
  }
}

// Key Vault -> key-events: a new version of the KEK (by its rotation policy, or `az keyvault key rotate`) starts a
// rotation to it. Only this key's events: the filter matches the key name exactly.
module keyEvents 'modules/system-topic-to-queue.bicep' = {
  name: 'key-events'
  params: {
    location: location
    tags: tags
    topicName: 'evgt-kv-${resourceToken}'
    sourceId: keyVault.outputs.id
    topicType: 'Microsoft.KeyVault.vaults'
    subscriptionName: 'kek-new-version-to-key-events'
    includedEventTypes: [
      'Microsoft.KeyVault.KeyNewVersionCreated'
    ]
    advancedFilters: [
      {
        operatorType: 'StringIn'
        key: 'data.ObjectName'
        values: [
          keyVault.outputs.keyName
        ]
      }
    ]
    storageAccountName: storage.outputs.name
    queueName: keyEventsQueueName
  }
}

// Storage -> ingest (optional): a file written to the landing container is encrypted into the encrypted container
// and the plaintext deleted (the ingest trigger's Event Grid form).
module landingEvents 'modules/system-topic-to-queue.bicep' = if (enableLandingIngestion) {
  name: 'landing-events'
  params: {
    location: location
    tags: tags
    topicName: 'evgt-st-${resourceToken}'
    sourceId: storage.outputs.id
    topicType: 'Microsoft.Storage.StorageAccounts'
    subscriptionName: 'landing-blob-created-to-ingest'
    includedEventTypes: [
      'Microsoft.Storage.BlobCreated'
    ]
    subjectBeginsWith: '/blobServices/default/containers/${landingContainerName}/blobs/'
    storageAccountName: storage.outputs.name
    queueName: ingestQueueName
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs (names and URLs only; never keys, connection strings or secrets)

@description('Base URL of the function app; the API is under /api.')
output functionAppUrl string = functionApp.outputs.url

@description('Name of the function app (for az functionapp commands).')
output functionAppName string = functionApp.outputs.name

@description('URI of the Key Vault.')
output vaultUri string = keyVault.outputs.vaultUri

@description('Versionless id of the key-encryption key (the app\'s CSE_KEY_ID).')
output keyId string = keyVault.outputs.keyUri

@description('Name of the storage account (landing, encrypted and the app\'s queues and tables).')
output storageAccountName string = storage.outputs.name
