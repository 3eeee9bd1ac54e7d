// Service Bus (Standard) and the remediation command queue. Duplicate detection drops a command the scan
// queues twice in the window (MessageIds are deterministic per device and day); a command that keeps
// failing is dead-lettered after maxDeliveryCount deliveries, and an expired one is dead-lettered rather
// than silently dropped, so every command is accounted for.

@description('Service Bus namespace name.')
param namespaceName string

@description('Queue of remediation commands.')
param queueName string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Deliveries before a command is dead-lettered (the worker abandons on transient errors).')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int = 10

@description('Peek-lock duration (ISO 8601, at most PT5M); the host renews it while the worker runs.')
param lockDuration string = 'PT5M'

@description('Duplicate detection window (ISO 8601, PT20S to P7D); at least a day so a re-run scan queues nothing twice.')
param duplicateDetectionWindow string = 'P1D'

@description('Time a command may wait in the queue before it expires to the dead-letter queue (ISO 8601).')
param messageTimeToLive string = 'P7D'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: queueName
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    defaultMessageTimeToLive: messageTimeToLive
    deadLetteringOnMessageExpiration: true
    requiresSession: false
    enablePartitioning: false
    enableBatchedOperations: true
  }
}

output namespaceName string = namespace.name
// Host name only (no scheme or port), from the endpoint so sovereign clouds work too.
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
output queueName string = queue.name
