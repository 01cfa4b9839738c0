// An Event Grid system topic on an Azure resource (the vault, or the storage account) with one subscription that
// delivers matching events to a storage queue. Delivery authenticates with the topic's own system-assigned
// identity, which may only add messages to that one queue: no keys, and no access to anything else.
// Event Grid writes each event as base64-encoded JSON in the Event Grid schema, which is what the app's queue
// triggers decode (host.json messageEncoding base64).

@description('Azure region of the system topic (the region of its source resource).')
param location string

@description('Tags applied to the system topic.')
param tags object

@description('Name of the system topic.')
param topicName string

@description('Resource id of the resource whose events the topic publishes.')
param sourceId string

@description('System topic type of the source, e.g. Microsoft.KeyVault.vaults or Microsoft.Storage.StorageAccounts.')
param topicType string

@description('Name of the event subscription.')
param subscriptionName string

@description('Event types the subscription delivers.')
param includedEventTypes array

@description('Only events whose subject starts with this are delivered; empty for any subject.')
param subjectBeginsWith string = ''

@description('Event Grid advanced filters (exact matches on event data), e.g. the key name; empty for none.')
param advancedFilters array = []

@description('Name of the storage account holding the destination queue.')
param storageAccountName string

@description('Name of the destination queue.')
param queueName string

var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: queueName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: topicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: sourceId
    topicType: topicType
  }
}

// Storage Queue Data Message Sender on the destination queue only: the topic's identity can add messages to this
// queue and do nothing else (it cannot read, delete or see other queues).
resource topicQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, topic.id, storageQueueDataMessageSender)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: subscriptionName
  // Deliveries fail until the topic's identity holds the sender role.
  dependsOn: [
    topicQueueSender
  ]
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: includedEventTypes
      subjectBeginsWith: subjectBeginsWith
      advancedFilters: advancedFilters
    }
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: storageAccount.id
          queueName: queueName
          // Never expire undelivered work: if the app is stopped for a week, the events are still there.
          queueMessageTimeToLiveInSeconds: -1
        }
      }
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

@description('Name of the system topic.')
output topicName string = topic.name
