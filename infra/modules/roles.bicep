// Azure RBAC for the app's managed identity, each role at the narrowest scope that works. Names come
// from guid() of scope, identity and role, so re-running the deployment never duplicates an assignment.
// (Microsoft Graph application permissions are not Azure RBAC: infra/grant-graph-permissions.py grants those.)

@description('Principal (object) id of the user-assigned managed identity.')
param principalId string

@description('Storage account holding the host storage and the tables.')
param storageAccountName string

@description('Service Bus namespace and queue the scan sends to and the worker reads.')
param serviceBusNamespaceName string
param queueName string

@description('Key Vault and the secrets the app settings reference (webhook HMAC key, keep-link HMAC key).')
param keyVaultName string
param webhookSecretName string
param keepLinkSecretName string

@description('Application Insights component (local auth off: ingestion needs Monitoring Metrics Publisher).')
param appInsightsName string

@description('Optional: a person who reviews the audit log with `janitor audit` (read-only on the tables).')
param reviewerPrincipalId string = ''

// Built-in role definition ids (the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Flex deployment package + host leases/state
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // host storage queues
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // audit + budget tables
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // scan and webhook enqueue commands
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // worker trigger
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault references of WEBHOOK_SECRET, KEEP_LINK_SECRET
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // telemetry ingestion with Entra auth
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6' // the reviewer: read the audit log, nothing else
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: serviceBusNamespaceName
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' existing = {
  parent: namespace
  name: queueName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: webhookSecretName
}

resource keepSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: keepLinkSecretName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource storageBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource storageQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

resource storageTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

resource queueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, roles.serviceBusDataSender)
  scope: queue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

resource queueReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, roles.serviceBusDataReceiver)
  scope: queue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(secret.id, principalId, roles.keyVaultSecretsUser)
  scope: secret
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource keepSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keepSecret.id, principalId, roles.keyVaultSecretsUser)
  scope: keepSecret
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

resource reviewerTableReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(reviewerPrincipalId)) {
  name: guid(storage.id, reviewerPrincipalId, roles.storageTableDataReader)
  scope: storage
  properties: {
    principalId: reviewerPrincipalId // a person or, when azd runs in CI, a service principal: type left to Azure
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataReader)
  }
}
