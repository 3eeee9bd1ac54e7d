// entra-janitor on Azure: `azd up` provisions this, then deploys the app (azure.yaml).
// After it: grant the Graph application permissions (infra/grant-graph-permissions.py), run
// `janitor doctor`, and let the first nightly run go in report mode (docs/deploy.md).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Azure region of every resource (one that offers the Flex Consumption plan).')
param location string

@secure()
@minLength(32)
@description('HMAC key ticketing systems sign webhook calls with; stored in Key Vault only.')
param webhookSecret string

@secure()
@minLength(32)
@description('HMAC key of the keep links in owner notices (GET/POST /api/keep/{token}); stored in Key Vault only.')
param keepLinkSecret string

@description('Public https origin the keep links point at. Empty: https://<app name>.azurewebsites.net.')
param publicBaseUrl string = ''

@description('Policy YAML in the deployed package, relative to the app root (e.g. policy.yaml). Empty: the safe defaults, report mode.')
param policyPath string = ''

@description('Object id of the person deploying (azd fills it in): may read the audit log with `janitor audit`.')
param reviewerPrincipalId string = ''

@description('NCRONTAB (6 fields, UTC) of the nightly scan.')
param scanSchedule string = '0 0 2 * * *'

@description('true stops every remediation (recorded as blocked): the first lever of a rollback.')
@allowed([
  'true'
  'false'
])
param killSwitch string = 'false'

@description('Comma-separated hosts ticket callbacks may be POSTed to.')
param callbackAllowlist string = ''

@description('UPN or object id of the mailbox notifications are sent from (needs Mail.Send).')
param mailSender string = ''

@description('Remediation command queue.')
param queueName string = 'remediation-commands'

@description('Table of the hash-chained audit log.')
param auditTableName string = 'janitoraudit'

@description('Table of the durable remediation budget.')
param budgetTableName string = 'janitorbudget'

@description('Deliveries before a failing command is dead-lettered.')
param maxDeliveryCount int = 10

@description('Upper bound on Function App instances (bounds concurrent Graph writes).')
param maximumInstanceCount int = 10

@description('Graph writes per window for the whole app (each instance gets its share), and the window in seconds.')
param graphWriteBudget int = 3000
param graphWriteWindowSeconds int = 150

@description('Attempts and total seconds one Graph request may spend retrying on 429/503/504.')
param graphMaxAttempts int = 6
param graphMaxRetrySeconds int = 300

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'entra-janitor'
}
var webhookSecretName = 'webhook-secret'
var keepLinkSecretName = 'keep-link-secret'
var appName = 'func-janitor-${token}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  scope: rg
  name: 'identity'
  params: {
    name: 'id-janitor-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  scope: rg
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-janitor-${token}'
    appInsightsName: 'appi-janitor-${token}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  scope: rg
  name: 'storage'
  params: {
    name: take('stjanitor${token}', 24)
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${take(token, 7)}'
    auditTableName: auditTableName
    budgetTableName: budgetTableName
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  scope: rg
  name: 'servicebus'
  params: {
    namespaceName: 'sb-janitor-${token}'
    queueName: queueName
    location: location
    tags: tags
    maxDeliveryCount: maxDeliveryCount
  }
}

module keyVault 'modules/keyvault.bicep' = {
  scope: rg
  name: 'keyvault'
  params: {
    name: take('kv-janitor-${token}', 24)
    location: location
    tags: tags
    webhookSecretName: webhookSecretName
    webhookSecret: webhookSecret
    keepLinkSecretName: keepLinkSecretName
    keepLinkSecret: keepLinkSecret
  }
}

module roles 'modules/roles.bicep' = {
  scope: rg
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.namespaceName
    queueName: serviceBus.outputs.queueName
    keyVaultName: keyVault.outputs.name
    webhookSecretName: webhookSecretName
    keepLinkSecretName: keepLinkSecretName
    appInsightsName: monitoring.outputs.appInsightsName
    reviewerPrincipalId: reviewerPrincipalId
  }
}

module functionApp 'modules/functionapp.bicep' = {
  scope: rg
  name: 'functionapp'
  dependsOn: [
    roles // the host needs its storage roles before it starts
  ]
  params: {
    name: appName
    planName: 'plan-janitor-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    auditTableName: storage.outputs.auditTableName
    budgetTableName: storage.outputs.budgetTableName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    queueName: serviceBus.outputs.queueName
    maxDeliveryCount: maxDeliveryCount
    webhookSecretUri: keyVault.outputs.webhookSecretUri
    keepLinkSecretUri: keyVault.outputs.keepLinkSecretUri
    publicBaseUrl: publicBaseUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: maximumInstanceCount
    policyPath: policyPath
    scanSchedule: scanSchedule
    killSwitch: killSwitch
    callbackAllowlist: callbackAllowlist
    mailSender: mailSender
    graphWriteBudget: graphWriteBudget
    graphWriteWindowSeconds: graphWriteWindowSeconds
    graphMaxAttempts: graphMaxAttempts
    graphMaxRetrySeconds: graphMaxRetrySeconds
  }
}

// azd stores these in the environment (.azure/<env>/.env); the grant script and docs read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = subscription().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_MANAGED_IDENTITY_NAME string = identity.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output SERVICEBUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output SERVICEBUS_QUEUE_NAME string = serviceBus.outputs.queueName
output AUDIT_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output AUDIT_TABLE_NAME string = storage.outputs.auditTableName
