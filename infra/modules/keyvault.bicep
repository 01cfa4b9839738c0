// Key Vault and the key-encryption key (KEK). Access is by Azure RBAC only (no access policies), deleted vaults and
// keys stay recoverable (soft delete), and purge protection forbids purging them before the retention ends: losing
// the KEK would make every blob, message and entity encrypted under it unreadable, so nobody, not even an owner,
// can destroy it quickly.

@description('Azure region of the vault.')
param location string

@description('Tags applied to the vault.')
param tags object

@description('Name of the vault (3-24 letters, digits and hyphens, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Vault SKU: premium keeps the key in an HSM (key type RSA-HSM), standard in software (key type RSA).')
@allowed([
  'premium'
  'standard'
])
param skuName string

@description('Days a deleted vault or key stays recoverable. Fixed once the vault exists.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int

@description('Name of the key-encryption key.')
param keyName string

@description('RSA modulus size of the key-encryption key in bits.')
@allowed([
  2048
  3072
  4096
])
param keySize int

@description('Rotation policy: time after a version is created when Key Vault creates the next one (ISO 8601 duration, at least P7D).')
param rotateAfter string

@description('Rotation policy: lifetime of each new version, its expiry (ISO 8601 duration, at least P28D, longer than rotateAfter).')
param versionExpiry string

@description('Rotation policy: time before a version expires when Key Vault raises Microsoft.KeyVault.KeyNearExpiry (ISO 8601 duration, at least P7D).')
param notifyBeforeExpiry string

@description('Resource id of the Log Analytics workspace that receives the vault\'s audit log.')
param workspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: skuName
    }
    // Azure RBAC decides who may use which key (app-roles.bicep); access policies are ignored.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // Cannot be turned off again: a deleted KEK can always be recovered within the retention period.
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Created once: Azure Resource Manager creates the first version of a key that does not exist and never changes an
// existing key, so redeploying neither adds a version nor edits the rotation policy (docs/DEPLOY.md tells how to
// change the policy later).
resource kek 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  parent: vault
  name: keyName
  tags: tags
  properties: {
    kty: skuName == 'premium' ? 'RSA-HSM' : 'RSA'
    keySize: keySize
    // Envelope encryption only wraps and unwraps content keys; the key can do nothing else.
    keyOps: [
      'wrapKey'
      'unwrapKey'
    ]
    attributes: {
      enabled: true
    }
    rotationPolicy: {
      attributes: {
        expiryTime: versionExpiry
      }
      lifetimeActions: [
        {
          // A new version every rotateAfter; its KeyNewVersionCreated event starts the app's re-wrap.
          trigger: {
            timeAfterCreate: rotateAfter
          }
          action: {
            type: 'rotate'
          }
        }
        {
          // Raises Microsoft.KeyVault.KeyNearExpiry when a version nears expiry, i.e. rotation did not happen.
          trigger: {
            timeBeforeExpiry: notifyBeforeExpiry
          }
          action: {
            type: 'notify'
          }
        }
      ]
    }
  }
}

// Who used which key version, when: wrap/unwrap and management calls go to Log Analytics.
resource auditLog 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

@description('Name of the vault.')
output name string = vault.name

@description('Resource id of the vault (the source of the key events system topic).')
output id string = vault.id

@description('Vault URI, e.g. https://<vault>.vault.azure.net/.')
output vaultUri string = vault.properties.vaultUri

@description('Vault host name, as CSE_ALLOWED_KEY_VAULTS expects it (e.g. <vault>.vault.azure.net).')
output vaultHost string = replace(replace(vault.properties.vaultUri, 'https://', ''), '/', '')

@description('Versionless key id (https://<vault>.vault.azure.net/keys/<name>): always the current version, so the app follows rotations.')
output keyUri string = kek.properties.keyUri

@description('Name of the key-encryption key.')
output keyName string = kek.name
