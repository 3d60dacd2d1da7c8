// Azure deployment of Diamond Opus into one resource group: the Function App
// (Flex Consumption, Python 3.11), its storage, Service Bus queue,
// PostgreSQL server, Key Vault, monitoring and alerts.
//
// Deploy: az deployment group create -g <group> -f bicep/main.bicep \
//   -p bicep/main.prod.bicepparam

targetScope = 'resourceGroup'

@description('Environment name of 2 to 8 lowercase letters and digits, e.g. dev or prod. Every resource name contains it.')
@minLength(2)
@maxLength(8)
param environmentName string

@description('Azure region, which must offer the Flex Consumption plan.')
param location string = resourceGroup().location

@description('Feed name. The app stores raw rows in raw_diamonds_<feed>.')
param feed string = 'nivoda'

@description('NCRONTAB schedule of the sync run (six fields, UTC).')
param syncSchedule string = '0 0 2 * * *'

@description('Nivoda GraphQL endpoint.')
param nivodaEndpoint string

@description('Nivoda API user name.')
param nivodaUsername string

@description('Nivoda API password, stored in Key Vault.')
@secure()
param nivodaPassword string

@description('Resend API key for alert emails, stored in Key Vault.')
@secure()
param resendApiKey string

@description('HMAC client secrets as JSON ({"client": ["current", "previous"]}, or {} for none), stored in Key Vault.')
@secure()
param hmacSecrets string

@description('Recipient of the app\'s alert emails and of the Azure Monitor alerts.')
param alertEmailTo string

@description('Sender of the app\'s alert emails, on a domain verified in Resend.')
param alertEmailFrom string

@description('PostgreSQL administrator login, which the app uses to connect and to run the migrations.')
param postgresAdminLogin string = 'diamondopus'

@description('PostgreSQL administrator password, stored in Key Vault as part of DATABASE_URL.')
@secure()
param postgresAdminPassword string

@description('PostgreSQL compute size.')
param postgresSkuName string = 'Standard_B1ms'

@description('PostgreSQL compute tier matching postgresSkuName.')
param postgresSkuTier string = 'Burstable'

@description('PostgreSQL high availability: Disabled, SameZone or ZoneRedundant.')
param postgresHighAvailability string = 'Disabled'

@description('Keep PostgreSQL backups in the paired region: Enabled or Disabled.')
param postgresGeoRedundantBackup string = 'Enabled'

@description('Extra PostgreSQL firewall rules: [{ name, startIpAddress, endIpAddress }].')
param postgresExtraFirewallRules array = []

@description('Max Function App instances.')
param maximumInstanceCount int = 40

// NOTE: every instance opens its own connection pool, so maximumInstanceCount
// times databasePoolMaxSize must stay below the server's max_connections,
// which Azure sets by compute size.
@description('Max PostgreSQL connections per Function App instance (DATABASE_POOL_MAX_SIZE).')
@minValue(1)
param databasePoolMaxSize int = 4

@description('Spread Function App instances across availability zones.')
param zoneRedundant bool = true

@description('Deliveries of a work item before it is dead-lettered.')
param maxDeliveryCount int = 10

@description('Tags applied to every resource.')
param tags object = {}

var allTags = union(tags, {
  'azd-env-name': environmentName
  application: 'diamond-opus'
})
var namePrefix = 'dopus-${environmentName}'
// Globally unique names get a suffix that is stable for this resource group.
var suffix = take(uniqueString(resourceGroup().id, environmentName), 8)
var queueName = 'work-items'
var watermarkContainerName = 'watermarks'
var databaseName = 'diamond_opus'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    namePrefix: namePrefix
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    accountName: toLower('stdopus${environmentName}${suffix}')
    tags: allTags
    watermarkContainerName: watermarkContainerName
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    namespaceName: 'sb-${namePrefix}-${suffix}'
    tags: allTags
    queueName: queueName
    maxDeliveryCount: maxDeliveryCount
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    location: location
    serverName: 'psql-${namePrefix}-${suffix}'
    tags: allTags
    databaseName: databaseName
    administratorLogin: postgresAdminLogin
    administratorPassword: postgresAdminPassword
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    highAvailabilityMode: postgresHighAvailability
    geoRedundantBackup: postgresGeoRedundantBackup
    extraFirewallRules: postgresExtraFirewallRules
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    vaultName: 'kv-${environmentName}-${suffix}'
    tags: allTags
    nivodaPassword: nivodaPassword
    resendApiKey: resendApiKey
    hmacSecrets: hmacSecrets
    // The password is percent-encoded so that any character is valid in the URL.
    databaseUrl: 'postgresql://${postgresAdminLogin}:${uriComponent(postgresAdminPassword)}@${postgres.outputs.fullyQualifiedDomainName}:5432/${databaseName}?sslmode=require'
  }
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    location: location
    identityName: 'id-${namePrefix}'
    tags: allTags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.accountName
    serviceBusNamespaceName: serviceBus.outputs.namespaceName
    queueName: serviceBus.outputs.queueName
    vaultName: keyVault.outputs.vaultName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    namePrefix: namePrefix
    appName: 'func-${namePrefix}-${suffix}'
    tags: allTags
    identityId: identity.outputs.identityId
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.accountName
    blobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    queueName: serviceBus.outputs.queueName
    maxDeliveryCount: maxDeliveryCount
    watermarkContainerName: watermarkContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    secretUris: {
      databaseUrl: keyVault.outputs.databaseUrlUri
      nivodaPassword: keyVault.outputs.nivodaPasswordUri
      resendApiKey: keyVault.outputs.resendApiKeyUri
      hmacSecrets: keyVault.outputs.hmacSecretsUri
    }
    nivodaEndpoint: nivodaEndpoint
    nivodaUsername: nivodaUsername
    alertEmailTo: alertEmailTo
    alertEmailFrom: alertEmailFrom
    syncSchedule: syncSchedule
    feed: feed
    maximumInstanceCount: maximumInstanceCount
    databasePoolMaxSize: databasePoolMaxSize
    zoneRedundant: zoneRedundant
  }
  // The app must not start before its identity can read secrets, storage and
  // the queue, or the first Key Vault references and triggers fail.
  dependsOn: [
    roles
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    namePrefix: namePrefix
    tags: allTags
    appInsightsId: monitoring.outputs.appInsightsId
    serviceBusNamespaceId: serviceBus.outputs.namespaceId
    queueName: serviceBus.outputs.queueName
    alertEmail: alertEmailTo
    healthUrl: 'https://${functionApp.outputs.defaultHostName}/health'
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    namePrefix: namePrefix
    tags: allTags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

@description('Base URL of the REST API.')
output API_BASE_URL string = 'https://${functionApp.outputs.defaultHostName}/api/v2'

@description('Health endpoint of the app.')
output HEALTH_URL string = 'https://${functionApp.outputs.defaultHostName}/health'

@description('Function App name, for deployments of the package.')
output FUNCTION_APP_NAME string = functionApp.outputs.appName

@description('Resource group of the deployment.')
output RESOURCE_GROUP string = resourceGroup().name

@description('Key Vault holding the app\'s secrets.')
output KEY_VAULT_NAME string = keyVault.outputs.vaultName

@description('PostgreSQL server host name.')
output POSTGRES_HOST string = postgres.outputs.fullyQualifiedDomainName
