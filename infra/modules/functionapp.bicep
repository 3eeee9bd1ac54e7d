// The Function App on the Flex Consumption plan (Linux, Python 3.13) and every app setting it reads.
// Identity-based connections only: the host storage, the Service Bus trigger, the code's Service Bus
// and Table clients, Graph, Key Vault and Application Insights all use the user-assigned identity.

@description('Function App name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('azd service this app hosts (azure.yaml services key).')
param serviceName string = 'api'

@description('Resource id, client id of the user-assigned managed identity.')
param identityId string
param identityClientId string

@description('Storage account holding host storage and the tables.')
param storageAccountName string
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string
param deploymentContainerUrl string
param auditTableName string
param budgetTableName string

@description('Service Bus namespace host name and queue.')
param serviceBusFullyQualifiedNamespace string
param queueName string

@description('The queue\'s MaxDeliveryCount: the worker records a final failure on the last delivery.')
param maxDeliveryCount int

@description('Versionless URI of the webhook secret in Key Vault.')
param webhookSecretUri string

@description('Versionless URI of the keep-link secret in Key Vault.')
param keepLinkSecretUri string

@description('Public https origin the keep links in owner notices point at. Empty: the app\'s azurewebsites.net host.')
param publicBaseUrl string = ''

@description('Application Insights connection string (local auth is off; ingestion uses the identity).')
param appInsightsConnectionString string

@description('Upper bound on instances: bounds the concurrent Graph writes across the whole app.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

// --- the code's settings (shared/settings.py) ---
@description('Path of the policy YAML inside the deployed package (relative to the app root).')
param policyPath string
param scanSchedule string

@description('NCRONTAB of the ticket callback delivery sweep.')
param ticketCallbackSchedule string = '0 */5 * * * *'
@allowed([
  'true'
  'false'
])
param killSwitch string
param callbackAllowlist string
param mailSender string
@description('Graph writes per window for the whole app (shared out across maximumInstanceCount).')
param graphWriteBudget int
param graphWriteWindowSeconds int
param graphMaxAttempts int
param graphMaxRetrySeconds int

var appSettings = {
  // Functions host storage, identity-based. (Flex Consumption takes the runtime and its version from
  // functionAppConfig below: FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not set.)
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: blobEndpoint
  AzureWebJobsStorage__queueServiceUri: queueEndpoint
  AzureWebJobsStorage__tableServiceUri: tableEndpoint

  // Connection "SERVICEBUS" of the remediation_worker trigger; the code's sender reads the namespace too.
  SERVICEBUS__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
  SERVICEBUS__credential: 'managedidentity'
  SERVICEBUS__clientId: identityClientId
  SERVICEBUS_QUEUE_NAME: queueName
  SERVICEBUS_MAX_DELIVERY_COUNT: string(maxDeliveryCount)
  QUEUE_BACKEND: 'servicebus'

  // Audit log in Table Storage.
  AUDIT_BACKEND: 'table'
  AUDIT_TABLE_ENDPOINT: tableEndpoint
  AUDIT_TABLE_NAME: auditTableName
  BUDGET_TABLE_NAME: budgetTableName

  // Microsoft Graph with the managed identity (application permissions: infra/grant-graph-permissions.py).
  GRAPH_AUTH: 'managed_identity'
  AZURE_CLIENT_ID: identityClientId
  AZURE_TENANT_ID: tenant().tenantId
  // The budget is per process: each instance gets its share, so the whole app stays within Graph's write limit.
  GRAPH_WRITE_BUDGET: string(max(1, graphWriteBudget / maximumInstanceCount))
  GRAPH_WRITE_WINDOW_SECONDS: string(graphWriteWindowSeconds)
  GRAPH_MAX_ATTEMPTS: string(graphMaxAttempts)
  GRAPH_MAX_RETRY_SECONDS: string(graphMaxRetrySeconds)

  // Behaviour.
  JANITOR_POLICY: policyPath
  JANITOR_KILL_SWITCH: killSwitch
  SCAN_SCHEDULE: scanSchedule
  TICKET_CALLBACK_SCHEDULE: ticketCallbackSchedule
  CALLBACK_ALLOWLIST: callbackAllowlist
  MAIL_SENDER: mailSender
  WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${webhookSecretUri})'
  // The owners' keep links: signed with a Key Vault secret, pointing at this app (GET/POST /api/keep/{token}).
  KEEP_LINK_SECRET: '@Microsoft.KeyVault(SecretUri=${keepLinkSecretUri})'
  PUBLIC_BASE_URL: empty(publicBaseUrl) ? 'https://${name}.azurewebsites.net' : publicBaseUrl

  // Telemetry: OpenTelemetry export with Entra ID auth (the component has local auth off).
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption exists only in some regions; a nightly batch tolerates a zonal outage (commands wait in the queue, the next run catches up).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: ticketing systems call the webhook (POST /api/tickets) from the internet; function keys and an HMAC signature (X-Janitor-Signature, secret in Key Vault) guard it. Add access restrictions or a private endpoint when the ticketing system is on a private network.
  // checkov:skip=CKV_AZURE_212: a nightly batch needs no warm failover instance; Flex Consumption starts instances on demand and queued commands wait for them.
  // checkov:skip=CKV_AZURE_213: Flex Consumption has no always-on instance to probe; `janitor doctor` and the run records in the audit log are the health checks.
  // checkov:skip=CKV_AZURE_17: ticketing systems cannot present client certificates to the webhook; function keys and the HMAC signature authenticate them instead (see CKV_AZURE_222).
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
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
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: [
        for setting in items(appSettings): {
          name: setting.key
          value: setting.value
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.13'
      }
    }
  }
}

// Basic-auth publishing (FTP and SCM) off: deployments go through azd with Entra auth.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
