// Alert rules of the sync pipeline and the action group that emails them.
// The log queries read the app's Application Insights telemetry: the app logs
// "run completed" and "run failed" with custom dimensions run_id and feed.

@description('Azure region of the log alert rules.')
param location string

@description('Prefix of resource names, e.g. "dopus-prod".')
param namePrefix string

@description('Tags applied to every resource.')
param tags object

@description('Resource id of the Application Insights component.')
param appInsightsId string

@description('Resource id of the Service Bus namespace.')
param serviceBusNamespaceId string

@description('Work item queue name.')
param queueName string

@description('Email address that receives the alerts.')
param alertEmail string

@description('URL of the app\'s health endpoint, probed by the availability test.')
param healthUrl string

@description('Hours without a completed run before the "no successful run" alert fires.')
@minValue(1)
@maxValue(47)
param maxHoursWithoutRun int = 26

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'dopusalerts'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Fires once per failed run: run_id and feed are dimensions, so each run
// gets its own alert that names it.
resource runFailed 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-run-failed'
  location: location
  tags: tags
  properties: {
    displayName: 'Sync run failed'
    description: 'The consolidation gate logged "run failed": under 70% of partitions succeeded or consolidation raised. The watermark was not advanced.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
traces
| where message startswith "run failed"
| extend run_id = tostring(customDimensions.run_id), feed = tostring(customDimensions.feed)
'''
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'run_id'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'feed'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// The daily run starts at 02:00 UTC, so 26 hours leaves two hours for a long
// run before the silence counts as a failure. The query always returns one
// row, so zero completed runs evaluates as 0 rather than as no data.
// NOTE: this also fires after a first deployment until the first run completes.
resource noSuccessfulRun 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-no-successful-run'
  location: location
  tags: tags
  properties: {
    displayName: 'No successful sync run in ${maxHoursWithoutRun} hours'
    description: 'No "run completed" log line in the last ${maxHoursWithoutRun} hours: the scheduler did not start, or every run failed or hung.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT1H'
    // The window must be one of the fixed sizes, so the query narrows it.
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: 'traces | where timestamp > ago(${maxHoursWithoutRun}h) | where message startswith "run completed" | summarize completed_runs = count()'
          timeAggregation: 'Total'
          metricMeasureColumn: 'completed_runs'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// A work item lands in the dead-letter queue after maxDeliveryCount failed
// deliveries or when it expires. Either way a page of the run was not stored.
resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-work-items-dead-lettered'
  location: 'global'
  tags: tags
  properties: {
    description: 'The ${queueName} queue has dead-lettered messages. Read them in Service Bus Explorer; the run\'s failed partitions can be retried from the API.'
    severity: 2
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadletteredWorkItems'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                queueName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

// Flex Consumption has no App Service health check, so Application Insights
// probes GET /health from three regions every five minutes instead.
resource healthTest 'Microsoft.Insights/webtests@2022-06-15' = {
  name: '${namePrefix}-health'
  location: location
  // Application Insights lists only web tests tagged with this link.
  tags: union(tags, {
    'hidden-link:${appInsightsId}': 'Resource'
  })
  kind: 'standard'
  properties: {
    SyntheticMonitorId: '${namePrefix}-health'
    Name: 'GET /health'
    Kind: 'standard'
    Enabled: true
    Frequency: 300
    Timeout: 30
    RetryEnabled: true
    Locations: [
      {
        Id: 'emea-nl-ams-azr'
      }
      {
        Id: 'us-va-ash-azr'
      }
      {
        Id: 'apac-sg-sin-azr'
      }
    ]
    Request: {
      RequestUrl: healthUrl
      HttpVerb: 'GET'
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

// Two failing regions out of three mean the app is down, not one network path.
resource healthDown 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-health-failing'
  location: 'global'
  tags: tags
  properties: {
    description: 'GET /health failed from at least two of three test regions.'
    severity: 1
    enabled: true
    scopes: [
      healthTest.id
      appInsightsId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria'
      webTestId: healthTest.id
      componentId: appInsightsId
      failedLocationCount: 2
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

output actionGroupId string = actionGroup.id
