// User-assigned managed identity of the Function App. It exists, with its
// role assignments, before the app starts, so the first start can already
// resolve Key Vault references and reach storage and Service Bus.

@description('Azure region of the resources.')
param location string

@description('Identity name.')
param identityName string

@description('Tags applied to every resource.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

output identityId string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
