// The Function App on the Flex Consumption plan (FC1, Linux), running as the user-assigned identity, and every app
// setting it reads. No setting holds a key or a connection string with a key: storage, Key Vault and Application
// Insights are all reached with the identity (the App Insights connection string only names the endpoint; with
// local auth disabled it cannot send telemetry on its own).

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app (the app also gets the azd-service-name tag).')
param tags object

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the function app (also its host name prefix).')
param appName string

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of the user-assigned managed identity (AzureWebJobsStorage__clientId, AZURE_CLIENT_ID).')
param identityClientId string

@description('Name of the storage account used by the host, for the deployment package and by the app.')
param storageAccountName string

@description('Blob container that holds the deployment package.')
param deploymentContainerName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Node.js version of the runtime.')
@allowed([
  '20'
  '22'
])
param nodeVersion string

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Upper bound of instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Largest HTTP request body the host accepts, in bytes (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT).')
param requestBodySizeLimit int

@description('CSE_KEY_ID: versionless Key Vault key URL of the active key-encryption key.')
param keyId string

@description('CSE_ALLOWED_KEY_VAULTS: comma-separated vault hosts whose keys the app may use.')
param allowedKeyVaults string

@description('CSE_ALLOW_V1: read legacy v1.0 blobs and messages.')
param allowV1 bool

@description('CSE_ALLOW_PLAINTEXT_READS: serve blobs that carry no encryption data.')
param allowPlaintextReads bool

@description('CSE_CONTAINERS: containers the app may use (comma-separated, or * for all but the host\'s own).')
param containers string

@description('CSE_TABLES: tables the app may use (comma-separated, or *).')
param tables string

@description('CSE_TABLE_PROTOCOL: table write format, 2.0 or legacy 1.0.')
@allowed([
  '2.0'
  '1.0'
])
param tableProtocol string

@description('CSE_TABLE_ENCRYPTED_PROPERTIES: default encrypted properties per table, table:a,b;other:c (empty for none).')
param tableEncryptedProperties string

@description('CSE_INGEST_QUEUE: queue the ingestion trigger listens on.')
param ingestQueueName string

@description('CSE_INGEST_TARGET_CONTAINER: default container ingested blobs are encrypted into.')
param ingestTargetContainerName string

@description('CSE_ROTATION_SCHEDULE: NCRONTAB schedule (six fields, UTC) of the rotation sweep.')
param rotationSchedule string

@description('CSE_ROTATION_CONCURRENCY: maximum concurrent re-wraps per worker.')
@minValue(1)
param rotationConcurrency int

@description('CSE_ROTATION_REENCRYPT_V1: automatic rotations also re-encrypt legacy v1.0 blobs to v2.0.')
param rotationReencryptV1 bool

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // Linux.
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          // azd / `func azure functionapp publish` upload the package here; the platform reads it as the identity.
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      // On Flex Consumption the runtime is set here; FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are
      // not app settings any more.
      runtime: {
        name: 'node'
        version: nodeVersion
      }
    }
  }
}

// Every app setting, in one place. test/infra/settingsContract.test.ts checks the names against
// shared/config/settingNames.ts and its explicit list of host settings.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: {
    // Host storage through the identity (ECOSYSTEM.md §5.1); the app's own Storage clients read the same settings.
    AzureWebJobsStorage__blobServiceUri: storageAccount.properties.primaryEndpoints.blob
    AzureWebJobsStorage__queueServiceUri: storageAccount.properties.primaryEndpoints.queue
    AzureWebJobsStorage__tableServiceUri: storageAccount.properties.primaryEndpoints.table
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    // DefaultAzureCredential (Key Vault) picks the user-assigned identity by this client id.
    AZURE_CLIENT_ID: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: string(requestBodySizeLimit)
    // The app's own settings (README.md, "Configuration"). CSE_LOCAL_KEYS is deliberately absent: in Azure the keys
    // live in Key Vault, and a local JWK Set file has no place on a Flex Consumption instance.
    CSE_KEY_ID: keyId
    CSE_ALLOWED_KEY_VAULTS: allowedKeyVaults
    // Written as lower-case literals: string(true) would give 'True', which the strict parser rejects.
    CSE_ALLOW_V1: allowV1 ? 'true' : 'false'
    CSE_ALLOW_PLAINTEXT_READS: allowPlaintextReads ? 'true' : 'false'
    CSE_CONTAINERS: containers
    CSE_TABLES: tables
    CSE_TABLE_PROTOCOL: tableProtocol
    CSE_TABLE_ENCRYPTED_PROPERTIES: tableEncryptedProperties
    CSE_INGEST_QUEUE: ingestQueueName
    CSE_INGEST_TARGET_CONTAINER: ingestTargetContainerName
    CSE_ROTATION_SCHEDULE: rotationSchedule
    CSE_ROTATION_CONCURRENCY: string(rotationConcurrency)
    CSE_ROTATION_REENCRYPT_V1: rotationReencryptV1 ? 'true' : 'false'
  }
}

@description('Name of the function app.')
output name string = app.name

@description('Base URL of the function app (the API is under /api).')
output url string = 'https://${app.properties.defaultHostName}'
