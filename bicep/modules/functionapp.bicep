// Function App on a Flex Consumption plan (Linux, Python 3.11). The plan
// runs the package that a deployment uploads to a blob container, so the app
// always runs from the package.

@description('Azure region of the resources.')
param location string

@description('Prefix of resource names, e.g. "dopus-prod".')
param namePrefix string

@description('Function App name, globally unique (it is the host name).')
param appName string

@description('Tags applied to every resource.')
param tags object

@description('Resource id of the app\'s user-assigned managed identity.')
param identityId string

@description('Client id of the same identity, for identity-based connections.')
param identityClientId string

@description('Storage account of AzureWebJobsStorage and the Durable task hub.')
param storageAccountName string

@description('Blob endpoint of that account, e.g. https://<name>.blob.core.windows.net/.')
param blobEndpoint string

@description('URL of the blob container that holds the deployed package.')
param deploymentContainerUrl string

@description('Fully qualified Service Bus namespace, e.g. <name>.servicebus.windows.net.')
param serviceBusNamespace string

@description('Work item queue name.')
param queueName string

@description('Max deliveries of a work item, equal to the queue\'s maxDeliveryCount.')
param maxDeliveryCount int

@description('Blob container of the watermarks.')
param watermarkContainerName string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Key Vault secret URIs of the app\'s secrets.')
param secretUris object

@description('Nivoda GraphQL endpoint.')
param nivodaEndpoint string

@description('Nivoda API user name.')
param nivodaUsername string

@description('Recipient of alert emails.')
param alertEmailTo string

@description('Sender of alert emails (a domain verified in Resend).')
param alertEmailFrom string

@description('NCRONTAB schedule of the sync run (six fields, UTC).')
param syncSchedule string

@description('Feed name, also the suffix of the raw table.')
param feed string

@description('Max instances the plan scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Max PostgreSQL connections of each instance.')
@minValue(1)
param databasePoolMaxSize int = 4

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Spread instances across availability zones (needs a region with zone support for Flex Consumption).')
param zoneRedundant bool = true

var keyVaultReference = '@Microsoft.KeyVault(SecretUri={0})'

// Flex Consumption sets the runtime through functionAppConfig and rejects
// FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and
// WEBSITE_RUN_FROM_PACKAGE as app settings.
var appSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  DATABASE_URL: format(keyVaultReference, secretUris.databaseUrl)
  DATABASE_POOL_MAX_SIZE: string(databasePoolMaxSize)
  NIVODA_ENDPOINT: nivodaEndpoint
  NIVODA_USERNAME: nivodaUsername
  NIVODA_PASSWORD: format(keyVaultReference, secretUris.nivodaPassword)
  RESEND_API_KEY: format(keyVaultReference, secretUris.resendApiKey)
  HMAC_SECRETS: format(keyVaultReference, secretUris.hmacSecrets)
  ALERT_EMAIL_TO: alertEmailTo
  ALERT_EMAIL_FROM: alertEmailFrom
  WATERMARK_ACCOUNT_URL: blobEndpoint
  WATERMARK_CONTAINER: watermarkContainerName
  WORK_ITEMS_QUEUE: queueName
  MAX_DELIVERY_COUNT: string(maxDeliveryCount)
  SERVICEBUS_NAMESPACE: serviceBusNamespace
  FEED: feed
  SYNC_SCHEDULE: syncSchedule
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${namePrefix}-plan'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  // azd deploys the service "api" of azure.yaml to the app with this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  // checkov:skip=CKV_AZURE_17: the REST API authenticates storefronts with API keys or HMAC signatures, and requiring client certificates would lock them out.
  // checkov:skip=CKV_AZURE_222: the REST API is public by design, so public network access stays enabled.
  // checkov:skip=CKV_AZURE_212: numberOfWorkers applies to App Service plans. Flex Consumption adds instances per trigger load and spreads them across zones when zoneRedundant is set.
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not support the App Service health check, so the app serves GET /health for external probes.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
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
        version: '3.11'
      }
    }
  }
}

// Deployments authenticate with Microsoft Entra ID (OIDC in the workflow, azd
// locally), so the basic publishing credentials stay off.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output appName string = site.name
output appId string = site.id
output defaultHostName string = site.properties.defaultHostName
