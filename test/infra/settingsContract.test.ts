/**
 * The settings contract: the CSE_* settings the configuration module reads (shared/config/settingNames.ts) are
 * exactly those the templates set (minus the commented exclusions below), those local.settings.sample.json lists
 * and those README.md documents; every other app setting the templates set is a host setting on the commented list
 * below; and the Azure defaults equal the local ones. Each check also runs on deliberately broken inputs.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CSE_SETTING_NAMES } from '../../shared/config/settingNames';
import { projectRoot } from '../helpers/paths';
import {
  BicepFile,
  body,
  declarations,
  findDeclaration,
  moduleTarget,
  properties,
  propertyKey,
  propertyValue,
  resolve,
  resourcesOfType,
  resourceType,
  stringLiteral,
  SyntaxNode,
  valueAt,
  where,
} from './bicep';
import { Edit, loadBrokenInfra, loadInfra } from './infraCopy';

/** CSE_* settings the code reads that the templates deliberately do not set. */
const NOT_SET_IN_AZURE: Readonly<Record<string, string>> = {
  // A path to a JWK Set of local keys, for development without Key Vault. In Azure the keys live in Key Vault
  // (CSE_KEY_ID), and a key file has no business in a deployment package or on a Flex Consumption instance.
  CSE_LOCAL_KEYS: 'local development keys only',
};

/** The host's own settings the templates set (not read by the CSE configuration module), each with its reason. */
const HOST_SETTINGS: Readonly<Record<string, string>> = {
  // Identity-based host storage (ECOSYSTEM.md §5.1); the app's Storage clients read the same settings.
  AzureWebJobsStorage__blobServiceUri: 'host storage: blob endpoint',
  AzureWebJobsStorage__queueServiceUri: 'host storage: queue endpoint (queue triggers, poison queues)',
  AzureWebJobsStorage__tableServiceUri: 'host storage: table endpoint (rotations table)',
  AzureWebJobsStorage__credential: 'host storage: managedidentity',
  AzureWebJobsStorage__clientId: 'host storage: which user-assigned identity',
  // @azure/identity's DefaultAzureCredential picks the user-assigned identity by this (Key Vault calls).
  AZURE_CLIENT_ID: "identity for the app's own Azure SDK clients",
  // Application Insights with Entra authentication (local auth is disabled on the component).
  APPLICATIONINSIGHTS_CONNECTION_STRING: 'telemetry endpoint',
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "telemetry sent with the identity's token",
  // The request size limit the HTTP docs promise (100 MiB). FUNCTIONS_WORKER_RUNTIME and
  // FUNCTIONS_EXTENSION_VERSION are deliberately absent: Flex Consumption sets the runtime in functionAppConfig.
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: 'HTTP request body limit',
};

/** CSE_* settings whose Azure value comes from a deployed resource, and the property it must be derived from. */
const DERIVED_FROM_RESOURCES: Readonly<Record<string, { type: string; property: string }>> = {
  // The versionless key URL: the app wraps with the current version and follows rotations.
  CSE_KEY_ID: { type: 'Microsoft.KeyVault/vaults/keys', property: 'keyUri' },
  // The vault's host name, taken from its URI.
  CSE_ALLOWED_KEY_VAULTS: { type: 'Microsoft.KeyVault/vaults', property: 'vaultUri' },
};

const REQUEST_BODY_SIZE_LIMIT = '104857600';

// ---------------------------------------------------------------------------------------------------------------
// Reading the inputs

interface AppSetting {
  readonly name: string;
  readonly value: SyntaxNode;
  readonly file: BicepFile;
}

/** The app settings of the templates: the literal keys of the one `Microsoft.Web/sites/config` `appsettings`. */
function appSettings(files: readonly BicepFile[]): AppSetting[] {
  const configs = resourcesOfType(files, 'Microsoft.Web/sites/config').filter((r) => {
    const name = valueAt(body(r.node), 'name');
    return name !== undefined && stringLiteral(name) === 'appsettings';
  });
  assert.equal(configs.length, 1, 'expected exactly one sites/config appsettings resource');
  const config = configs[0]!;
  const object = valueAt(body(config.node), 'properties');
  assert.equal(
    object?.type,
    'object',
    `${where(config.file, config.node)}: appsettings properties must be an object literal`,
  );
  return properties(object!).map((p) => {
    const name = propertyKey(p);
    const value = propertyValue(p);
    assert.ok(name && value, `${where(config.file, p)}: app setting names must be literal`);
    return { name, value, file: config.file };
  });
}

function sampleValues(text: string): Record<string, string> {
  return (JSON.parse(text) as { Values: Record<string, string> }).Values;
}

function readProjectFile(...parts: string[]): string {
  return readFileSync(join(projectRoot(), ...parts), 'utf8');
}

/** CSE_-prefixed code identifiers the README may name that are not settings. */
const NOT_SETTINGS: readonly string[] = ['CSE_SETTING_NAMES', 'CSE_SETTING_DEFAULTS'];

function cseNamesIn(text: string): Set<string> {
  return new Set((text.match(/\bCSE_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []).filter((n) => !NOT_SETTINGS.includes(n)));
}

// ---------------------------------------------------------------------------------------------------------------
// The checks (each returns its violations, so tests can run them on broken inputs too)

function templateSettingsViolations(files: readonly BicepFile[]): string[] {
  const out: string[] = [];
  const set = appSettings(files).map((s) => s.name);
  const expected = CSE_SETTING_NAMES.filter((n) => !(n in NOT_SET_IN_AZURE));
  for (const name of Object.keys(NOT_SET_IN_AZURE)) {
    if (!(CSE_SETTING_NAMES as readonly string[]).includes(name))
      out.push(`stale exclusion ${name}: the code does not read it`);
    if (set.includes(name)) out.push(`${name} is excluded from Azure but the templates set it`);
  }
  for (const name of expected) if (!set.includes(name)) out.push(`the templates do not set ${name}`);
  for (const name of set) {
    if (name.startsWith('CSE_') && !(CSE_SETTING_NAMES as readonly string[]).includes(name)) {
      out.push(`the templates set ${name}, which the code does not read`);
    }
    if (!name.startsWith('CSE_') && !(name in HOST_SETTINGS))
      out.push(`${name} is set but not on the host settings list`);
  }
  for (const name of Object.keys(HOST_SETTINGS)) if (!set.includes(name)) out.push(`host setting ${name} is not set`);
  const duplicates = set.filter((n, i) => set.indexOf(n) !== i);
  for (const name of duplicates) out.push(`${name} is set twice`);
  return out;
}

function sampleViolations(sampleText: string): string[] {
  const names = Object.keys(sampleValues(sampleText)).filter((n) => n.startsWith('CSE_'));
  return [
    ...CSE_SETTING_NAMES.filter((n) => !names.includes(n)).map((n) => `local.settings.sample.json lacks ${n}`),
    ...names
      .filter((n) => !(CSE_SETTING_NAMES as readonly string[]).includes(n))
      .map((n) => `local.settings.sample.json lists ${n}, which the code does not read`),
  ];
}

function readmeViolations(readme: string): string[] {
  const mentioned = cseNamesIn(readme);
  return [
    ...CSE_SETTING_NAMES.filter((n) => !mentioned.has(n)).map((n) => `README.md does not document ${n}`),
    ...[...mentioned]
      .filter((n) => !(CSE_SETTING_NAMES as readonly string[]).includes(n))
      .map((n) => `README.md mentions ${n}, which the code does not read`),
  ];
}

/** Every CSE_* value that is a plain default in Azure equals the local default in the sample. */
function defaultsViolations(files: readonly BicepFile[], sampleText: string): string[] {
  const local = sampleValues(sampleText);
  return appSettings(files)
    .filter((s) => s.name.startsWith('CSE_') && !(s.name in DERIVED_FROM_RESOURCES))
    .flatMap((s) => {
      const resolved = resolve(files, s.file, s.value);
      if (resolved.kind !== 'literal') return [`${s.name}: no plain default (${s.value.text})`];
      return resolved.value === local[s.name]
        ? []
        : [
            `${s.name} defaults to ${JSON.stringify(resolved.value)} in Azure but ${JSON.stringify(local[s.name])} locally`,
          ];
    });
}

/** CSE_KEY_ID and CSE_ALLOWED_KEY_VAULTS come from the right property of the right resource. */
function derivedViolations(files: readonly BicepFile[]): string[] {
  const settings = appSettings(files);
  return Object.entries(DERIVED_FROM_RESOURCES).flatMap(([name, source]) => {
    const setting = settings.find((s) => s.name === name);
    if (!setting) return [`${name} is not set`];
    const resolved = resolve(files, setting.file, setting.value);
    if (resolved.kind !== 'expression') return [`${name} is a fixed value, not derived from a ${source.type}`];
    const access = resolved.node
      .descendantsOfType('member_expression')
      .concat(resolved.node.type === 'member_expression' ? [resolved.node] : [])
      .find((m) => m.childForFieldName('property')?.text === source.property);
    const base = access?.childForFieldName('object')?.childForFieldName('object');
    const decl = base?.type === 'identifier' ? findDeclaration(resolved.file, base.text) : undefined;
    const type = decl?.kind === 'resource' ? resourceType(decl.node).type : undefined;
    return type === source.type
      ? []
      : [`${name} is ${resolved.node.text} (${resolved.file.path}), not the ${source.property} of a ${source.type}`];
  });
}

/** A literal-valued module param as main.bicep passes it to the storage module (e.g. the queues it creates). */
function storageNames(files: readonly BicepFile[], param: string): string[] {
  const main = files.find((f) => f.path === 'main.bicep')!;
  const storage = declarations(main, 'module').find((m) => moduleTarget(files, m)?.path === 'modules/storage.bicep');
  assert.ok(storage, 'main.bicep deploys no modules/storage.bicep');
  let list = valueAt(body(storage.node), `params.${param}`);
  if (list?.type === 'identifier') {
    const v = findDeclaration(main, list.text);
    list = v?.node.namedChildren[v.node.namedChildren.length - 1];
  }
  assert.equal(list?.type, 'array', `storage module param ${param} must be an array`);
  return list!.namedChildren.map((n) => {
    const r = resolve(files, main, n);
    return r.kind === 'literal' ? r.value : `<${n.text}>`;
  });
}

function settingLiteral(files: readonly BicepFile[], name: string): string | undefined {
  const setting = appSettings(files).find((s) => s.name === name);
  const resolved = setting && resolve(files, setting.file, setting.value);
  return resolved?.kind === 'literal' ? resolved.value : undefined;
}

// ---------------------------------------------------------------------------------------------------------------

describe('settings contract: code, templates, local sample, README', () => {
  const infra = loadInfra();
  const sample = readProjectFile('local.settings.sample.json');

  test('the templates set exactly the CSE_* settings the code reads (minus the commented exclusions) and only listed host settings', () => {
    assert.deepEqual(templateSettingsViolations(infra), []);
  });

  test('local.settings.sample.json lists exactly the CSE_* settings the code reads', () => {
    assert.deepEqual(sampleViolations(sample), []);
  });

  test('README.md documents every CSE_* setting and no other', () => {
    assert.deepEqual(readmeViolations(readProjectFile('README.md')), []);
  });

  test('Azure defaults equal the local defaults of local.settings.sample.json', () => {
    assert.deepEqual(defaultsViolations(infra, sample), []);
  });

  test('CSE_KEY_ID is the versionless key URL and CSE_ALLOWED_KEY_VAULTS the vault host', () => {
    assert.deepEqual(derivedViolations(infra), []);
  });

  test('FUNCTIONS_REQUEST_BODY_SIZE_LIMIT is the 100 MiB the docs promise', () => {
    assert.equal(settingLiteral(infra, 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT'), REQUEST_BODY_SIZE_LIMIT);
  });

  test('the queues, table and containers the code uses are created', () => {
    const queues = storageNames(infra, 'queueNames');
    const ingest = settingLiteral(infra, 'CSE_INGEST_QUEUE');
    assert.ok(ingest, 'CSE_INGEST_QUEUE has no literal value');
    for (const q of [ingest, 'rotation-jobs', 'key-events', 'ingest-done'])
      assert.ok(queues.includes(q), `queue ${q} in ${queues}`);
    for (const q of [ingest, 'rotation-jobs', 'key-events']) {
      assert.ok(queues.includes(`${q}-poison`), `poison queue ${q}-poison in ${queues}`);
    }
    assert.deepEqual(storageNames(infra, 'tableNames'), ['rotations']);
    const containers = storageNames(infra, 'containerNames');
    const target = settingLiteral(infra, 'CSE_INGEST_TARGET_CONTAINER');
    assert.ok(target && containers.includes(target), `ingest target ${target} in ${containers}`);
    assert.ok(containers.includes('landing'), `landing in ${containers}`);
    // CSE_CONTAINERS=* excludes the host's azure-webjobs-* containers: the deployment package must be one of them.
    const site = resourcesOfType(infra, 'Microsoft.Web/sites')[0]!;
    const deployment = valueAt(body(site.node), 'properties.functionAppConfig.deployment.storage.value');
    const container = deployment?.namedChildren.filter((c) => c.type === 'interpolation').pop()?.namedChildren[0];
    const name = container && resolve(infra, site.file, container);
    assert.equal(name?.kind, 'literal', 'the deployment container name is not a literal');
    assert.ok(name.kind === 'literal' && name.value.startsWith('azure-webjobs-') && containers.includes(name.value));
  });

  describe('each check fails on broken input', () => {
    const cases: { what: string; edits: Edit[]; check: (files: BicepFile[]) => string[]; expect: string }[] = [
      {
        what: 'a CSE setting missing from the templates',
        edits: [{ file: 'modules/functionapp.bicep', find: '    CSE_TABLES: tables\n', replace: '' }],
        check: templateSettingsViolations,
        expect: 'the templates do not set CSE_TABLES',
      },
      {
        what: 'an excluded setting set anyway',
        edits: [
          {
            file: 'modules/functionapp.bicep',
            find: '    CSE_TABLES: tables\n',
            replace: "    CSE_TABLES: tables\n    CSE_LOCAL_KEYS: ''\n",
          },
        ],
        check: templateSettingsViolations,
        expect: 'CSE_LOCAL_KEYS is excluded from Azure',
      },
      {
        what: 'a CSE setting the code does not read',
        edits: [
          {
            file: 'modules/functionapp.bicep',
            find: '    CSE_TABLES: tables\n',
            replace: '    CSE_TABLES: tables\n    CSE_TABLE: tables\n',
          },
        ],
        check: templateSettingsViolations,
        expect: 'CSE_TABLE, which the code does not read',
      },
      {
        what: 'a host setting not on the list',
        edits: [
          {
            file: 'modules/functionapp.bicep',
            find: '    CSE_TABLES: tables\n',
            replace: "    CSE_TABLES: tables\n    FUNCTIONS_WORKER_RUNTIME: 'node'\n",
          },
        ],
        check: templateSettingsViolations,
        expect: 'FUNCTIONS_WORKER_RUNTIME is set but not on the host settings list',
      },
      {
        what: 'a listed host setting missing',
        edits: [
          {
            file: 'modules/functionapp.bicep',
            find: "    AzureWebJobsStorage__credential: 'managedidentity'\n",
            replace: '',
          },
        ],
        check: templateSettingsViolations,
        expect: 'host setting AzureWebJobsStorage__credential is not set',
      },
      {
        what: 'an Azure default that differs from the local one',
        edits: [
          {
            file: 'main.bicep',
            find: 'param rotationConcurrency int = 16',
            replace: 'param rotationConcurrency int = 8',
          },
        ],
        check: (files) => defaultsViolations(files, sample),
        expect: 'CSE_ROTATION_CONCURRENCY defaults to "8" in Azure but "16" locally',
      },
      {
        what: 'a boolean written as string(true), which gives True',
        edits: [
          {
            file: 'modules/functionapp.bicep',
            find: "CSE_ALLOW_V1: allowV1 ? 'true' : 'false'",
            replace: 'CSE_ALLOW_V1: string(allowV1)',
          },
        ],
        check: (files) => defaultsViolations(files, sample),
        expect: 'CSE_ALLOW_V1: no plain default',
      },
      {
        what: 'the versioned key id',
        edits: [
          {
            file: 'modules/keyvault.bicep',
            find: 'output keyUri string = kek.properties.keyUri',
            replace: 'output keyUri string = kek.properties.keyUriWithVersion',
          },
        ],
        check: derivedViolations,
        expect: 'CSE_KEY_ID is kek.properties.keyUriWithVersion',
      },
      {
        what: 'a fixed vault host',
        edits: [
          {
            file: 'main.bicep',
            find: 'allowedKeyVaults: keyVault.outputs.vaultHost',
            replace: "allowedKeyVaults: 'example.vault.azure.net'",
          },
        ],
        check: derivedViolations,
        expect: 'CSE_ALLOWED_KEY_VAULTS is a fixed value',
      },
    ];
    for (const c of cases) {
      test(`templates: ${c.what}`, () => {
        const violations = c.check(loadBrokenInfra(c.edits));
        assert.ok(
          violations.some((v) => v.includes(c.expect)),
          `want ${JSON.stringify(c.expect)} in ${JSON.stringify(violations)}`,
        );
      });
    }

    test('local.settings.sample.json without a setting, or with an unknown one', () => {
      const values = sampleValues(sample);
      const withoutTables = { ...values };
      delete withoutTables.CSE_TABLES;
      assert.ok(
        sampleViolations(JSON.stringify({ Values: withoutTables })).includes(
          'local.settings.sample.json lacks CSE_TABLES',
        ),
      );
      const withUnknown = { ...values, CSE_TABLE: '*' };
      assert.ok(
        sampleViolations(JSON.stringify({ Values: withUnknown })).some((v) =>
          v.includes('CSE_TABLE, which the code does not read'),
        ),
      );
    });

    test('a README without a setting, or with a stale one', () => {
      const complete = CSE_SETTING_NAMES.map((n) => `| \`${n}\` | ... |`).join('\n');
      assert.deepEqual(readmeViolations(complete), []);
      assert.deepEqual(readmeViolations(complete.replace('`CSE_TABLES`', '`tables`')), [
        'README.md does not document CSE_TABLES',
      ]);
      assert.deepEqual(readmeViolations(`${complete}\nCSE_KEY_VERSION`), [
        'README.md mentions CSE_KEY_VERSION, which the code does not read',
      ]);
    });
  });
});
