// Service Bus namespace and the `work-items` queue. Each message asks a worker
// to fetch one page of one partition, and its message id is
// "<run id>:<partition id>:<offset>".

@description('Azure region of the resources.')
param location string

@description('Service Bus namespace name, globally unique.')
param namespaceName string

@description('Tags applied to every resource.')
param tags object

@description('Queue of work items, one message per page to fetch.')
param queueName string = 'work-items'

@description('Deliveries of one message before Service Bus moves it to the dead-letter queue.')
@minValue(1)
@maxValue(2000)
param maxDeliveryCount int = 10

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: namespaceName
  location: location
  tags: tags
  // Standard is the lowest tier with duplicate detection, which drops a
  // repeated send of the same work item.
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    // Senders and receivers authenticate with Microsoft Entra ID (the app's
    // managed identity), so SAS keys are disabled.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: queueName
  properties: {
    // A worker fetches and stores one page in seconds. Two minutes lets a
    // message whose worker died return to the queue soon, and the Functions
    // host renews the lock while a slow invocation is still running
    // (maxAutoLockRenewalDuration in host.json).
    lockDuration: 'PT2M'
    // A page that fails on every delivery (supplier down, invalid payload) is
    // retried this many times, then dead-lettered. The worker reads the same
    // number (MAX_DELIVERY_COUNT) to record the partition as failed on the
    // last delivery, and the dead-letter alert fires.
    maxDeliveryCount: maxDeliveryCount
    // A sender retrying after a timeout, or a redelivered worker enqueueing
    // the next page again, reuses the message id "<run>:<partition>:<offset>".
    // Service Bus drops such a copy within the window: one hour covers all
    // redeliveries of a page (10 deliveries of a few minutes at most).
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT1H'
    // A page still queued after a day belongs to a run that the next daily
    // run supersedes. It expires into the dead-letter queue, where the
    // dead-letter alert makes it visible, instead of vanishing.
    defaultMessageTimeToLive: 'P1D'
    deadLetteringOnMessageExpiration: true
    // Work items are independent pages, so no sessions or ordering.
    requiresSession: false
    enablePartitioning: false
    enableBatchedOperations: true
    maxSizeInMegabytes: 1024
  }
}

output namespaceId string = namespace.id
output namespaceName string = namespace.name
output queueId string = queue.id
output queueName string = queue.name
// serviceBusEndpoint is "https://<name>.servicebus.windows.net:443/", but
// clients take the host name alone.
var endpointHost = replace(namespace.properties.serviceBusEndpoint, 'https://', '')
output fullyQualifiedNamespace string = replace(endpointHost, ':443/', '')
