import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Edit, loadBrokenInfra, loadInfra } from './infraCopy';
import * as rules from './rules';
import { Rule } from './rules';

/**
 * For every rule: it holds on infra/, and it reports the right problem on a copy broken on purpose (one or more
 * cases per rule), so no rule can pass by looking at nothing.
 */
interface BrokenCase {
  readonly what: string;
  readonly edits: readonly Edit[];
  /** A substring every expected violation message list must contain. */
  readonly expect: string;
}

const CASES = new Map<Rule, readonly BrokenCase[]>([
  [
    rules.parsesWithoutErrors,
    [
      {
        what: 'a stray comma',
        edits: [
          {
            file: 'modules/monitoring.bicep',
            find: 'retentionInDays: retentionInDays',
            replace: 'retentionInDays: ,,',
          },
        ],
        expect: 'modules/monitoring.bicep:',
      },
      {
        what: 'a truncated file',
        edits: [
          {
            file: 'main.bicep',
            find: 'output storageAccountName string = storage.outputs.name',
            replace: 'output storageAccountName string =',
          },
        ],
        expect: 'main.bicep:',
      },
    ],
  ],
  [
    rules.localModulesOnly,
    [
      {
        what: 'a br/public: registry module',
        edits: [
          {
            file: 'main.bicep',
            find: "module monitoring 'modules/monitoring.bicep'",
            replace: "module monitoring 'br/public:avm/res/insights/component:0.4.0'",
          },
        ],
        expect: 'br/public:avm/res/insights/component',
      },
      {
        what: 'a module file that does not exist',
        edits: [{ file: 'main.bicep', find: "'modules/storage.bicep'", replace: "'modules/storage-v2.bicep'" }],
        expect: 'not found',
      },
    ],
  ],
  [
    rules.storageHardened,
    [
      {
        what: 'shared key access on',
        edits: [
          { file: 'modules/storage.bicep', find: 'allowSharedKeyAccess: false', replace: 'allowSharedKeyAccess: true' },
        ],
        expect: 'allowSharedKeyAccess is true',
      },
      {
        what: 'shared key access left to a parameter',
        edits: [
          {
            file: 'modules/storage.bicep',
            find: 'allowSharedKeyAccess: false',
            replace: "allowSharedKeyAccess: skuName == 'x'",
          },
        ],
        expect: 'allowSharedKeyAccess is not a literal',
      },
      {
        what: 'public blob access on',
        edits: [
          {
            file: 'modules/storage.bicep',
            find: 'allowBlobPublicAccess: false',
            replace: 'allowBlobPublicAccess: true',
          },
        ],
        expect: 'allowBlobPublicAccess',
      },
      {
        what: 'TLS 1.0 allowed',
        edits: [
          {
            file: 'modules/storage.bicep',
            find: "minimumTlsVersion: 'TLS1_2'",
            replace: "minimumTlsVersion: 'TLS1_0'",
          },
        ],
        expect: 'minimumTlsVersion is TLS1_0',
      },
    ],
  ],
  [
    rules.keyVaultHardened,
    [
      {
        what: 'purge protection off',
        edits: [
          {
            file: 'modules/keyvault.bicep',
            find: 'enablePurgeProtection: true',
            replace: 'enablePurgeProtection: false',
          },
        ],
        expect: 'enablePurgeProtection is false',
      },
      {
        what: 'access policies instead of RBAC',
        edits: [
          { file: 'modules/keyvault.bicep', find: 'enableRbacAuthorization: true', replace: 'accessPolicies: []' },
        ],
        expect: 'enableRbacAuthorization is not a literal',
      },
    ],
  ],
  [
    rules.keyRotationPolicy,
    [
      {
        what: 'no notify action',
        edits: [{ file: 'modules/keyvault.bicep', find: "type: 'notify'", replace: "type: 'rotate'" }],
        expect: "no 'notify' lifetime action",
      },
    ],
  ],
  [
    rules.monitoringLocalAuthDisabled,
    [
      {
        what: 'App Insights local auth on',
        edits: [
          { file: 'modules/monitoring.bicep', find: 'DisableLocalAuth: true', replace: 'DisableLocalAuth: false' },
        ],
        expect: 'DisableLocalAuth is false',
      },
      {
        what: 'Log Analytics local auth on',
        edits: [
          { file: 'modules/monitoring.bicep', find: 'disableLocalAuth: true', replace: 'disableLocalAuth: false' },
        ],
        expect: 'features.disableLocalAuth is false',
      },
    ],
  ],
  [
    rules.flexConsumptionApp,
    [
      {
        what: 'the legacy Consumption plan',
        edits: [{ file: 'modules/functionapp.bicep', find: "name: 'FC1'", replace: "name: 'Y1'" }],
        expect: 'sku.name is Y1',
      },
      {
        what: 'no maximum instance count',
        edits: [
          { file: 'modules/functionapp.bicep', find: 'maximumInstanceCount: maximumInstanceCount\n', replace: '\n' },
        ],
        expect: 'scaleAndConcurrency.maximumInstanceCount',
      },
    ],
  ],
  [
    rules.roleDefinitions,
    [
      {
        what: 'Key Vault Administrator instead of Crypto User',
        edits: [
          {
            file: 'modules/app-roles.bicep',
            find: "var keyVaultCryptoUser = '12338af0-0e69-4776-bea7-57ae8d297424'",
            replace: "var keyVaultCryptoUser = '00482a5a-887f-4fb3-b363-3b7fe8e74483'",
          },
        ],
        expect: 'Key Vault Administrator',
      },
      {
        what: 'the Event Grid sender role missing',
        edits: [
          {
            file: 'modules/system-topic-to-queue.bicep',
            find: "'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'",
            replace: "'974c5e8b-45b9-4653-ba55-5f855dd0fb88'",
          },
        ],
        expect: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a is never assigned',
      },
    ],
  ],
  [
    rules.roleAssignmentsCommented,
    [
      {
        what: 'a role assignment without its comment',
        edits: [
          {
            file: 'modules/app-roles.bicep',
            find: '// Storage Table Data Contributor on the account: rotation progress lives in the rotations table, and the app\n// encrypts and re-wraps entities in any table CSE_TABLES allows.\n',
            replace: '',
          },
        ],
        expect: "'appTableContributor' has no comment",
      },
    ],
  ],
  [
    rules.roleScopes,
    [
      {
        what: 'Crypto User on the whole vault',
        edits: [{ file: 'modules/app-roles.bicep', find: 'scope: kek', replace: 'scope: vault' }],
        expect: 'must be scoped to a Microsoft.KeyVault/vaults/keys, not vault',
      },
      {
        what: 'Message Sender on the whole account',
        edits: [
          { file: 'modules/system-topic-to-queue.bicep', find: 'scope: queue', replace: 'scope: storageAccount' },
        ],
        expect: 'not storageAccount',
      },
    ],
  ],
  [
    rules.noSecretsInOutputs,
    [
      {
        what: 'an output with account keys',
        edits: [
          {
            file: 'modules/storage.bicep',
            find: "@description('Name of the storage account.')",
            replace:
              "@description('Key.')\noutput accountKey string = account.listKeys().keys[0].value\n\n@description('Name of the storage account.')",
          },
        ],
        expect: 'references listKeys()',
      },
      {
        what: 'an output with the App Insights connection string, through a variable',
        edits: [
          {
            file: 'modules/monitoring.bicep',
            find: "@description('Resource id of the Log Analytics workspace, for diagnostic settings.')",
            replace:
              "var telemetry = appInsights.properties.ConnectionString\n\n@description('Telemetry.')\noutput telemetry string = telemetry\n\n@description('Resource id of the Log Analytics workspace, for diagnostic settings.')",
          },
        ],
        expect: 'references the property ConnectionString',
      },
      {
        what: 'a secure output',
        edits: [
          {
            file: 'modules/storage.bicep',
            find: "@description('Name of the storage account.')\noutput name",
            replace: "@secure()\n@description('Name of the storage account.')\noutput name",
          },
        ],
        expect: "output 'name' is @secure()",
      },
    ],
  ],
  [
    rules.noKeysAnywhere,
    [
      {
        what: 'a key-based AzureWebJobsStorage connection string',
        edits: [
          {
            file: 'modules/functionapp.bicep',
            find: "AzureWebJobsStorage__credential: 'managedidentity'",
            replace:
              "AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=${storageAccount.name};AccountKey=${storageAccount.listKeys().keys[0].value}'",
          },
        ],
        expect: 'calls listKeys()',
      },
    ],
  ],
  [
    rules.versionlessKeyId,
    [
      {
        what: 'the versioned key id handed to the app',
        edits: [
          {
            file: 'modules/keyvault.bicep',
            find: 'kek.properties.keyUri',
            replace: 'kek.properties.keyUriWithVersion',
          },
        ],
        expect: 'uses keyUriWithVersion',
      },
    ],
  ],
  [
    rules.described,
    [
      {
        what: 'a parameter without @description',
        edits: [
          {
            file: 'modules/keyvault.bicep',
            find: "@description('Name of the key-encryption key.')\nparam keyName string",
            replace: 'param keyName string',
          },
        ],
        expect: "param 'keyName' has no @description",
      },
    ],
  ],
]);

describe('Bicep templates (tree-sitter-bicep, offline)', () => {
  const infra = loadInfra();

  test('infra/ has main.bicep and its local modules', () => {
    const paths = infra.map((f) => f.path);
    assert.ok(paths.includes('main.bicep'), `main.bicep missing: ${paths.join(', ')}`);
    assert.ok(paths.filter((p) => p.startsWith('modules/')).length >= 5, `modules: ${paths.join(', ')}`);
  });

  test('every rule has at least one deliberately broken case', () => {
    const missing = rules.ALL_RULES.filter((r) => !CASES.has(r)).map((r) => r.name);
    assert.deepEqual(missing, []);
  });

  for (const rule of rules.ALL_RULES) {
    describe(rule.name, () => {
      test('holds on infra/', () => {
        assert.deepEqual(rule.check(infra), []);
      });
      for (const broken of CASES.get(rule) ?? []) {
        test(`fails on a copy with ${broken.what}`, () => {
          const violations = rule.check(loadBrokenInfra(broken.edits));
          assert.ok(
            violations.some((v) => v.includes(broken.expect)),
            `expected a violation containing ${JSON.stringify(broken.expect)}, got ${JSON.stringify(violations)}`,
          );
        });
      }
    });
  }
});
