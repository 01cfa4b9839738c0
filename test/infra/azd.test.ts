/**
 * The azd wiring around the templates: main.parameters.json feeds only parameters main.bicep declares and every
 * required one; azure.yaml's service is the app the templates tag for azd; .funcignore keeps local keys and
 * installed modules out of the deployment package while leaving what the remote build needs.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../helpers/paths';
import {
  BicepFile,
  body,
  declarations,
  descendants,
  literalText,
  paramDefault,
  propertyKey,
  propertyValue,
  resourcesOfType,
} from './bicep';
import { loadInfra } from './infraCopy';

function read(...parts: string[]): string {
  return readFileSync(join(projectRoot(), ...parts), 'utf8');
}

function parameterFileViolations(files: readonly BicepFile[], parametersJson: string): string[] {
  const main = files.find((f) => f.path === 'main.bicep');
  if (!main) return ['no main.bicep'];
  const params = declarations(main, 'param');
  const given = Object.keys((JSON.parse(parametersJson) as { parameters: Record<string, unknown> }).parameters);
  return [
    ...given
      .filter((g) => !params.some((p) => p.name === g))
      .map((g) => `main.parameters.json sets unknown param ${g}`),
    ...params
      .filter((p) => !paramDefault(p.node) && !given.includes(p.name))
      .map((p) => `main.parameters.json does not set the required param ${p.name}`),
  ];
}

/** The value of the azd-service-name tag on the function app. */
function azdServiceTag(files: readonly BicepFile[]): string | undefined {
  const site = resourcesOfType(files, 'Microsoft.Web/sites')[0];
  const tag =
    site && descendants(body(site.node)!, 'object_property').find((p) => propertyKey(p) === 'azd-service-name');
  return literalText(tag ? propertyValue(tag) : undefined);
}

/** The service names of azure.yaml (two-space-indented keys under `services:`). */
function azureYamlServices(yaml: string): string[] {
  const section = yaml.split(/^services:\s*$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([A-Za-z0-9_-]+):\s*$/gm)].map((m) => m[1]!);
}

function funcignoreViolations(funcignore: string): string[] {
  const patterns = funcignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  return [
    ...['.local', 'local.settings.json', 'node_modules']
      .filter((p) => !patterns.includes(p))
      .map((p) => `${p} is not ignored`),
    ...['*.ts', 'tsconfig.json', 'package.json', 'package-lock.json', 'functions', 'shared']
      .filter((p) => patterns.includes(p))
      .map((p) => `${p} is ignored, but the remote build needs it`),
  ];
}

describe('azd wiring', () => {
  const infra = loadInfra();

  test('main.parameters.json sets only declared params and every required one', () => {
    assert.deepEqual(parameterFileViolations(infra, read('infra', 'main.parameters.json')), []);
    assert.deepEqual(parameterFileViolations(infra, JSON.stringify({ parameters: { environmentName: {}, env: {} } })), [
      'main.parameters.json sets unknown param env',
    ]);
    assert.deepEqual(parameterFileViolations(infra, JSON.stringify({ parameters: {} })), [
      'main.parameters.json does not set the required param environmentName',
    ]);
  });

  test('azure.yaml deploys to the app the templates tag for azd, at resource-group scope', () => {
    const yaml = read('azure.yaml');
    const tag = azdServiceTag(infra);
    assert.ok(tag, 'the function app has no azd-service-name tag');
    assert.deepEqual(azureYamlServices(yaml), [tag]);
    assert.match(yaml, /^\s+host: function$/m);
    assert.match(yaml, /^\s+path: infra$/m);
    const main = infra.find((f) => f.path === 'main.bicep')!;
    const scope = descendants(main.root, 'target_scope_assignment')[0];
    assert.equal(scope && literalText(scope.namedChildren[0]), 'resourceGroup');
  });

  test('.funcignore keeps local keys and node_modules out of the package, and what the remote build needs in', () => {
    assert.deepEqual(funcignoreViolations(read('.funcignore')), []);
    assert.deepEqual(funcignoreViolations('node_modules\nlocal.settings.json\ntsconfig.json\n'), [
      '.local is not ignored',
      'tsconfig.json is ignored, but the remote build needs it',
    ]);
  });
});
