// Development environment: smallest sizes, no zone or geo redundancy.
// Secrets come from environment variables of the shell that deploys.
using './main.bicep'

param environmentName = 'dev'
param nivodaEndpoint = readEnvironmentVariable('NIVODA_ENDPOINT')
param nivodaUsername = readEnvironmentVariable('NIVODA_USERNAME')
param nivodaPassword = readEnvironmentVariable('NIVODA_PASSWORD')
param resendApiKey = readEnvironmentVariable('RESEND_API_KEY')
param hmacSecrets = readEnvironmentVariable('HMAC_SECRETS', '{}')
param alertEmailTo = readEnvironmentVariable('ALERT_EMAIL_TO')
param alertEmailFrom = readEnvironmentVariable('ALERT_EMAIL_FROM')
param postgresAdminPassword = readEnvironmentVariable('POSTGRES_ADMIN_PASSWORD')

param postgresSkuName = 'Standard_B1ms'
param postgresSkuTier = 'Burstable'
param postgresHighAvailability = 'Disabled'
param postgresGeoRedundantBackup = 'Disabled'
param zoneRedundant = false
param maximumInstanceCount = 40
// A Burstable B1ms server accepts few connections, so one per instance.
param databasePoolMaxSize = 1
