// Key Vault (RBAC authorization) holding the webhook HMAC secret and the keep-link HMAC secret. The app setting is a Key Vault reference
// resolved by the platform with the managed identity (Key Vault Secrets User on this one secret).

@description('Key Vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the secret holding the webhook HMAC key.')
param webhookSecretName string

@secure()
@description('HMAC key ticketing systems sign webhook calls with (X-Janitor-Signature).')
param webhookSecret string

@description('Name of the secret holding the keep-link HMAC key.')
param keepLinkSecretName string

@secure()
@description('HMAC key of the keep links in owner notices (/api/keep/{token}).')
param keepLinkSecret string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the platform resolves the app's Key Vault reference over the public endpoint (Flex Consumption without VNet integration); every request needs an Entra token and an RBAC role.
  // checkov:skip=CKV_AZURE_189: public network access stays on so the platform can resolve the Key Vault reference without VNet integration; RBAC and Entra tokens guard every read.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: an expiry would silently stop ticket intake on that date; the secret is rotated on purpose (docs/deploy.md, "Rotate the webhook secret") and the versionless reference picks up the new version.
  parent: vault
  name: webhookSecretName
  properties: {
    value: webhookSecret
    contentType: 'text/plain'
  }
}

resource keepSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: an expiry would silently turn every keep link into a refusal on that date; the secret is rotated on purpose (docs/deploy.md) and the versionless reference picks up the new version.
  parent: vault
  name: keepLinkSecretName
  properties: {
    value: keepLinkSecret
    contentType: 'text/plain; charset=utf-8'
  }
}

output name string = vault.name
output id string = vault.id
// Versionless: the app reads the newest version after a rotation.
output webhookSecretUri string = secret.properties.secretUri
output keepLinkSecretUri string = keepSecret.properties.secretUri
