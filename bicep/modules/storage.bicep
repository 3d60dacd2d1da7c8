// Storage account of the Function App: host state (AzureWebJobsStorage), the
// Durable Functions task hub (queues, tables, blobs), the deployment package
// container of the Flex Consumption plan, and the watermark blobs.

@description('Azure region of the resources.')
param location string

@description('Storage account name: 3 to 24 lowercase letters and digits.')
@minLength(3)
@maxLength(24)
param accountName string

@description('Tags applied to every resource.')
param tags object

@description('Blob container of the sync watermarks, one blob per feed.')
param watermarkContainerName string = 'watermarks'

@description('Blob container that the Flex Consumption plan deploys the app package from.')
param deploymentContainerName string = 'app-package'

// NOTE: named storageSkuName because Checkov 3.3.30 resolves parameter names
// across all files of the folder, and postgres.bicep has its own skuName.
@description('Replication of the account. Geo-redundant by default because the watermarks decide what the next run fetches.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_GRS'

@description('Days that deleted blobs and containers can be restored.')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 7

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSkuName
  }
  // checkov:skip=CKV_AZURE_43: the name is a parameter, which main.bicep derives from uniqueString() and the @minLength/@maxLength bounds above apply.
  // checkov:skip=CKV_AZURE_35: the Flex Consumption app has no virtual network here, so the firewall must admit it. Every request needs a Microsoft Entra token because shared keys are disabled.
  // checkov:skip=CKV_AZURE_59: the reason given for CKV_AZURE_35 applies, and anonymous blob access is off (allowBlobPublicAccess false).
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Every client (host, Durable task hub, deployment, watermark code) uses
    // the app's managed identity, so account keys and SAS stay disabled.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource watermarkContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: watermarkContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output accountId string = account.id
output accountName string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
