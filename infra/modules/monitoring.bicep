// Monitoring: a Log Analytics workspace and a workspace-based Application Insights component, both with local
// (key-based) authentication disabled, so telemetry is accepted only from Entra-authenticated senders (the app's
// identity, which gets Monitoring Metrics Publisher in app-roles.bicep).

@description('Azure region of the workspace and the component.')
param location string

@description('Tags applied to every resource in this module.')
param tags object

@description('Name of the Log Analytics workspace.')
param workspaceName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Days Log Analytics keeps data (also the Key Vault audit log retention).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Only Entra ID (RBAC) queries and ingestion; no workspace shared keys.
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    // The instrumentation key in the connection string is not enough to send telemetry: the sender must present
    // an Entra token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING in functionapp.bicep).
    DisableLocalAuth: true
  }
}

@description('Name of the Application Insights component (the connection string is read where it is used, never passed as an output).')
output appInsightsName string = appInsights.name

@description('Resource id of the Log Analytics workspace, for diagnostic settings.')
output workspaceId string = workspace.id
