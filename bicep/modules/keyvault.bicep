// Key Vault (Azure RBAC authorization) holding the app's secrets. App settings
// refer to them as @Microsoft.KeyVault(SecretUri=...), resolved by App Service
// with the app's managed identity.

@description('Azure region of the resources.')
param location string

@description('Key Vault name, globally unique, 3 to 24 characters.')
@minLength(3)
@maxLength(24)
param vaultName string

@description('Tags applied to every resource.')
param tags object

@description('Nivoda API password.')
@secure()
param nivodaPassword string

@description('Resend API key for alert emails.')
@secure()
param resendApiKey string

@description('PostgreSQL connection URL of the application database, password included.')
@secure()
param databaseUrl string

@description('HMAC client secrets as JSON: {"client": ["current", "previous"]}.')
@secure()
param hmacSecrets string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_109: without VNet integration the app resolves Key Vault references from changing public addresses, which a vault firewall cannot list. Azure RBAC limits access instead.
  // checkov:skip=CKV_AZURE_189: Key Vault references need public network access, for the reason given for CKV_AZURE_109.
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
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Secret names are the app setting names in kebab case.
var secretValues = {
  'nivoda-password': nivodaPassword
  'resend-api-key': resendApiKey
  'database-url': databaseUrl
  'hmac-secrets': hmacSecrets
}

resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for secret in items(secretValues): {
    parent: vault
    name: secret.key
    // checkov:skip=CKV_AZURE_41: these credentials are rotated when the supplier, Resend or the database rotates them. An expiry date would make Key Vault reject the reference and stop the app instead.
    properties: {
      value: secret.value
      contentType: 'text/plain'
    }
  }
]

output vaultId string = vault.id
output vaultName string = vault.name
output vaultUri string = vault.properties.vaultUri
// Versionless URIs, so App Service picks up a rotated secret within a day or
// on restart.
output nivodaPasswordUri string = '${vault.properties.vaultUri}secrets/nivoda-password'
output resendApiKeyUri string = '${vault.properties.vaultUri}secrets/resend-api-key'
output databaseUrlUri string = '${vault.properties.vaultUri}secrets/database-url'
output hmacSecretsUri string = '${vault.properties.vaultUri}secrets/hmac-secrets'
