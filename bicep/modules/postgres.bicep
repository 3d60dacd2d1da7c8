// PostgreSQL Flexible Server with the application database. The app connects
// over TLS through the public endpoint, restricted by firewall rules.

@description('Azure region of the resources.')
param location string

@description('Server name, globally unique.')
param serverName string

@description('Tags applied to every resource.')
param tags object

@description('Name of the application database.')
param databaseName string = 'diamond_opus'

@description('Administrator login name.')
param administratorLogin string

@description('Administrator password.')
@secure()
param administratorPassword string

@description('Compute size, e.g. Standard_B1ms (Burstable) or Standard_D2ds_v5 (GeneralPurpose).')
param skuName string = 'Standard_B1ms'

@description('Compute tier matching skuName.')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'Burstable'

@description('Storage size in GiB.')
@minValue(32)
param storageSizeGB int = 32

@description('Days of point-in-time restore.')
@minValue(7)
@maxValue(35)
param backupRetentionDays int = 7

@description('Keep backups in the paired region as well.')
@allowed([
  'Enabled'
  'Disabled'
])
param geoRedundantBackup string = 'Enabled'

@description('High availability mode: ZoneRedundant keeps a standby in another zone (not available on Burstable).')
@allowed([
  'Disabled'
  'SameZone'
  'ZoneRedundant'
])
param highAvailabilityMode string = 'Disabled'

@description('Extra client IP ranges allowed through the firewall, e.g. an operator workstation for migrations: [{ name, startIpAddress, endIpAddress }].')
param extraFirewallRules array = []

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2022-12-01' = {
  name: serverName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: '16'
    administratorLogin: administratorLogin
    administratorLoginPassword: administratorPassword
    storage: {
      storageSizeGB: storageSizeGB
    }
    backup: {
      backupRetentionDays: backupRetentionDays
      geoRedundantBackup: geoRedundantBackup
    }
    highAvailability: {
      mode: highAvailabilityMode
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2022-12-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// Connections must use TLS. The app's DATABASE_URL also sets sslmode=require.
resource requireTls 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2022-12-01' = {
  parent: server
  name: 'require_secure_transport'
  properties: {
    value: 'on'
    source: 'user-override'
  }
}

// The Flex Consumption plan has no fixed outbound addresses without a virtual
// network, so the server admits connections from Azure services (the
// 0.0.0.0 rule is Azure's marker for that, not an open range). Clients still
// need the password and TLS.
// NOTE: this also admits other tenants' Azure resources to the login prompt.
// Private access needs VNet integration of the Function App and a delegated
// subnet for the server, which this template does not create.
resource allowAzureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2022-12-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource extraRules 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2022-12-01' = [
  for rule in extraFirewallRules: {
    parent: server
    name: rule.name
    properties: {
      startIpAddress: rule.startIpAddress
      endIpAddress: rule.endIpAddress
    }
  }
]

output serverName string = server.name
output fullyQualifiedDomainName string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
