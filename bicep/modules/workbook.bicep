// Azure Monitor workbook over the app's Application Insights telemetry: the
// list of runs, one run followed from the scheduler to consolidation, and
// failures. Every query reads the custom dimensions run_id, partition_id,
// feed and trace_id that the app attaches to its logs and metrics.

@description('Azure region of the workbook.')
param location string

@description('Prefix of resource names, e.g. "dopus-prod".')
param namePrefix string

@description('Tags applied to every resource.')
param tags object

@description('Resource id of the Application Insights component.')
param appInsightsId string

var runsQuery = '''
traces
| where message startswith "run completed" or message startswith "run failed"
| extend run_id = tostring(customDimensions.run_id), feed = tostring(customDimensions.feed)
| extend outcome = iff(message startswith "run completed", "completed", "failed")
| join kind=leftouter (
    customMetrics
    | where name in ("run_duration_seconds", "consolidation_rows_per_second")
    | extend run_id = tostring(customDimensions.run_id)
    | summarize
        run_duration_seconds = maxif(valueMax, name == "run_duration_seconds"),
        consolidation_rows_per_second = maxif(valueMax, name == "consolidation_rows_per_second")
        by run_id
  ) on run_id
| project timestamp, run_id, feed, outcome, run_duration_seconds, consolidation_rows_per_second
| order by timestamp desc
'''

var runTimelineQuery = '''
union traces, exceptions, customMetrics
| where tostring(customDimensions.run_id) == "{RunId}"
| extend
    partition_id = tostring(customDimensions.partition_id),
    feed = tostring(customDimensions.feed),
    trace_id = tostring(customDimensions.trace_id)
| project
    timestamp, itemType, operation_Name,
    message = coalesce(message, outerMessage, name), value, severityLevel,
    partition_id, feed, trace_id, operation_Id
| order by timestamp asc
'''

var runPartitionsQuery = '''
customMetrics
| where tostring(customDimensions.run_id) == "{RunId}"
| where name in ("pages_fetched", "stones_upserted", "supplier_errors")
| extend partition_id = tostring(customDimensions.partition_id)
| summarize
    pages_fetched = sumif(valueSum, name == "pages_fetched"),
    stones_upserted = sumif(valueSum, name == "stones_upserted"),
    supplier_errors = sumif(valueSum, name == "supplier_errors")
    by partition_id
| order by supplier_errors desc, partition_id asc
'''

var failuresQuery = '''
union
    (traces | where severityLevel >= 3 or message startswith "run failed"),
    exceptions
| extend
    run_id = tostring(customDimensions.run_id),
    partition_id = tostring(customDimensions.partition_id),
    feed = tostring(customDimensions.feed),
    trace_id = tostring(customDimensions.trace_id)
| project
    timestamp, itemType, operation_Name, message = coalesce(message, outerMessage),
    problemId, severityLevel, run_id, partition_id, feed, trace_id
| order by timestamp desc
'''

var supplierErrorsQuery = '''
customMetrics
| where name == "supplier_errors"
| extend kind = tostring(customDimensions.kind)
| summarize errors = sum(valueSum) by bin(timestamp, 1h), kind
| render timechart
'''

var queries = [
  {
    name: 'runs'
    title: 'Runs (newest first)'
    query: runsQuery
    visualization: 'table'
  }
  {
    name: 'run-timeline'
    title: 'Run {RunId}: every log line, exception and metric in time order'
    query: runTimelineQuery
    visualization: 'table'
  }
  {
    name: 'run-partitions'
    title: 'Run {RunId}: pages, stones and supplier errors per partition'
    query: runPartitionsQuery
    visualization: 'table'
  }
  {
    name: 'failures'
    title: 'Failures: errors, exceptions and failed runs'
    query: failuresQuery
    visualization: 'table'
  }
  {
    name: 'supplier-errors'
    title: 'Supplier errors per hour by kind'
    query: supplierErrorsQuery
    visualization: 'timechart'
  }
]

var parametersItem = {
  type: 9
  name: 'parameters'
  content: {
    version: 'KqlParameterItem/1.0'
    parameters: [
      {
        id: 'time-range'
        version: 'KqlParameterItem/1.0'
        name: 'TimeRange'
        label: 'Time range'
        type: 4
        isRequired: true
        value: {
          durationMs: 172800000
        }
      }
      {
        id: 'run-id'
        version: 'KqlParameterItem/1.0'
        name: 'RunId'
        label: 'Run id (copy one from the runs table)'
        type: 1
        isRequired: false
        value: ''
      }
    ]
  }
}

var queryItems = [
  for item in queries: {
    type: 3
    name: item.name
    content: {
      version: 'KqlItem/1.0'
      title: item.title
      query: item.query
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: item.visualization
      size: 0
    }
  }
]

var workbookContent = {
  version: 'Notebook/1.0'
  items: concat([parametersItem], queryItems)
  isLocked: false
  fallbackResourceIds: [
    appInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, namePrefix, 'runs-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: '${namePrefix} sync runs and failures'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string(workbookContent)
  }
}

output workbookId string = workbook.id
