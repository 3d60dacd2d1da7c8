// Production environment: zone-redundant app and database, geo-redundant
// backups. Secrets come from environment variables of the shell or workflow
// that deploys.
using './main.bicep'

param environmentName = 'prod'
param nivodaEndpoint = readEnvironmentVariable('NIVODA_ENDPOINT')
param nivodaUsername = readEnvironmentVariable('NIVODA_USERNAME')
param nivodaPassword = readEnvironmentVariable('NIVODA_PASSWORD')
param resendApiKey = readEnvironmentVariable('RESEND_API_KEY')
param hmacSecrets = readEnvironmentVariable('HMAC_SECRETS', '{}')
param alertEmailTo = readEnvironmentVariable('ALERT_EMAIL_TO')
param alertEmailFrom = readEnvironmentVariable('ALERT_EMAIL_FROM')
param postgresAdminPassword = readEnvironmentVariable('POSTGRES_ADMIN_PASSWORD')

param postgresSkuName = 'Standard_D2ds_v5'
param postgresSkuTier = 'GeneralPurpose'
param postgresHighAvailability = 'ZoneRedundant'
param postgresGeoRedundantBackup = 'Enabled'
param zoneRedundant = true
param maximumInstanceCount = 40
param databasePoolMaxSize = 4
