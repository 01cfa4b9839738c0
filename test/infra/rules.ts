/**
 * The security and offline-build rules the Bicep templates must keep, as checks over the syntax tree
 * (bicep.ts). Each rule returns the violations it finds (`file:line: what is wrong`); none means it holds.
 * bicepRules.test.ts runs every rule on infra/ and on a deliberately broken copy, so each is known to fail when it
 * should.
 */
import {
  BicepFile,
  body,
  calledName,
  Declaration,
  declarations,
  decorators,
  descendants,
  findDeclaration,
  firstSyntaxError,
  leadingComment,
  literalText,
  moduleTarget,
  modulePath,
  propertyKey,
  resolve,
  resourcesOfType,
  resourceType,
  stringLiteral,
  SyntaxNode,
  valueAt,
  where,
} from './bicep';

export interface Rule {
  readonly name: string;
  check(files: readonly BicepFile[]): string[];
}

/** Built-in Azure role definition ids (identical in every tenant). */
export const ROLES = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a',
} as const;

/** Roles the deployment must assign (issue 10): the app's data-plane roles and the Event Grid topics' sender role. */
export const REQUIRED_ROLES: readonly string[] = Object.values(ROLES);

/** Broad roles no assignment may use: each grants far more than the app or the topics need. */
export const FORBIDDEN_ROLES: Readonly<Record<string, string>> = {
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635': 'Owner',
  'b24988ac-6180-42a0-ab88-20f7382dd24c': 'Contributor',
  '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9': 'User Access Administrator',
  '17d1049b-9a84-46fb-8f53-869881c3d3ab': 'Storage Account Contributor (can list account keys)',
  '81a9662b-bebf-436f-a333-f67b29880f12': 'Storage Account Key Operator Service Role',
  '00482a5a-887f-4fb3-b363-3b7fe8e74483': 'Key Vault Administrator',
  'f25e0fa2-a7c8-4377-a976-54943a77a395': 'Key Vault Contributor',
};

/** Roles that must be assigned at a narrow scope: the resource type their `scope:` must name. */
export const ROLE_SCOPES: Readonly<Record<string, string>> = {
  // The app may use its one key, not every key in the vault.
  [ROLES.keyVaultCryptoUser]: 'Microsoft.KeyVault/vaults/keys',
  // An Event Grid topic may add messages to the queue it delivers to, nothing else.
  [ROLES.storageQueueDataMessageSender]: 'Microsoft.Storage/storageAccounts/queueServices/queues',
};

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

// ---------------------------------------------------------------------------------------------------------------

/** Every file parses: no ERROR or MISSING node. */
export const parsesWithoutErrors: Rule = {
  name: 'every .bicep file parses without errors',
  check: (files) =>
    files.flatMap((file) => {
      if (!file.root.hasError) return [];
      const error = firstSyntaxError(file.root);
      const what = error?.isMissing
        ? `missing ${error.type}`
        : `unexpected ${JSON.stringify(error?.text.slice(0, 40))}`;
      return [`${error ? where(file, error) : file.path}: syntax error (${what})`];
    }),
};

/** Modules are local files in the set; nothing comes from a registry (br:, br/public:) or a template spec (ts:). */
export const localModulesOnly: Rule = {
  name: 'local modules only (no br/public: or other registry references)',
  check: (files) => {
    const out: string[] = [];
    for (const file of files) {
      for (const mod of declarations(file, 'module')) {
        const path = modulePath(mod.node);
        if (!path || /^(br|ts)[:/]/i.test(path))
          out.push(`${where(file, mod.node)}: module '${path}' is not a local file`);
        else if (!moduleTarget(files, mod)) out.push(`${where(file, mod.node)}: module file '${path}' not found`);
      }
      // Registry references can also hide in import/using statements or strings.
      for (const s of descendants(file.root, 'string_content')) {
        if (/\bbr(\/public)?:/i.test(s.text)) out.push(`${where(file, s)}: registry reference '${s.text}'`);
      }
    }
    return out;
  },
};

/** Storage accounts: no shared key access, no public blob access, TLS 1.2, HTTPS only. */
export const storageHardened: Rule = {
  name: 'storage accounts: shared key access off, no public blob access, TLS 1.2, HTTPS only',
  check: (files) =>
    requireEach(files, 'Microsoft.Storage/storageAccounts', {
      'properties.allowSharedKeyAccess': 'false',
      'properties.allowBlobPublicAccess': 'false',
      'properties.minimumTlsVersion': 'TLS1_2',
      'properties.supportsHttpsTrafficOnly': 'true',
    }),
};

/** Key Vaults: RBAC authorization, soft delete, purge protection. */
export const keyVaultHardened: Rule = {
  name: 'key vaults: RBAC authorization, soft delete and purge protection on',
  check: (files) =>
    requireEach(files, 'Microsoft.KeyVault/vaults', {
      'properties.enableRbacAuthorization': 'true',
      'properties.enableSoftDelete': 'true',
      'properties.enablePurgeProtection': 'true',
    }),
};

/** Keys: a rotation policy that rotates and notifies, with an expiry for new versions. */
export const keyRotationPolicy: Rule = {
  name: 'keys: rotation policy with rotate and notify actions and a version expiry',
  check: (files) => {
    const keys = resourcesOfType(files, 'Microsoft.KeyVault/vaults/keys');
    if (keys.length === 0) return ['no Microsoft.KeyVault/vaults/keys resource'];
    return keys.flatMap((key) => {
      const policy = valueAt(body(key.node), 'properties.rotationPolicy');
      if (!policy) return [`${where(key.file, key.node)}: key '${key.name}' has no rotationPolicy`];
      const out: string[] = [];
      if (!valueAt(policy, 'attributes.expiryTime')) out.push(`${where(key.file, policy)}: no attributes.expiryTime`);
      const actions = valueAt(policy, 'lifetimeActions');
      const types = (actions?.namedChildren ?? []).map((a) => literalText(valueAt(a, 'action.type'))?.toLowerCase());
      for (const wanted of ['rotate', 'notify']) {
        if (!types.includes(wanted)) out.push(`${where(key.file, policy)}: no '${wanted}' lifetime action`);
      }
      return out;
    });
  },
};

/** Application Insights and Log Analytics accept Entra ID only (local, key-based auth disabled). */
export const monitoringLocalAuthDisabled: Rule = {
  name: 'Application Insights and Log Analytics: local authentication disabled',
  check: (files) => [
    ...requireEach(files, 'Microsoft.Insights/components', { 'properties.DisableLocalAuth': 'true' }),
    ...requireEach(files, 'Microsoft.OperationalInsights/workspaces', {
      'properties.features.disableLocalAuth': 'true',
    }),
  ],
};

/** The function app: Flex Consumption, Node runtime, user-assigned identity for the app and its deployment. */
export const flexConsumptionApp: Rule = {
  name: 'function app: Flex Consumption (FC1), node runtime, user-assigned identity, HTTPS only',
  check: (files) => [
    ...requireEach(files, 'Microsoft.Web/serverfarms', { 'sku.name': 'FC1', 'sku.tier': 'FlexConsumption' }),
    ...requireEach(files, 'Microsoft.Web/sites', {
      'identity.type': 'UserAssigned',
      'properties.httpsOnly': 'true',
      'properties.functionAppConfig.runtime.name': 'node',
      'properties.functionAppConfig.deployment.storage.authentication.type': 'UserAssignedIdentity',
    }),
    ...resourcesOfType(files, 'Microsoft.Web/sites').flatMap((site) =>
      ['instanceMemoryMB', 'maximumInstanceCount']
        .filter((p) => !valueAt(body(site.node), `properties.functionAppConfig.scaleAndConcurrency.${p}`))
        .map((p) => `${where(site.file, site.node)}: no functionAppConfig.scaleAndConcurrency.${p}`),
    ),
  ],
};

/** Every role the issue names is assigned, no broad role is, and each assignment names its principal type. */
export const roleDefinitions: Rule = {
  name: 'role assignments: the required role definition ids, no broad roles',
  check: (files) => {
    const out: string[] = [];
    const assigned = new Set<string>();
    for (const ra of roleAssignments(files)) {
      const roles = roleIds(files, ra);
      if (roles.length === 0) out.push(`${where(ra.file, ra.node)}: roleDefinitionId names no role id`);
      for (const role of roles) {
        assigned.add(role);
        const forbidden = FORBIDDEN_ROLES[role];
        if (forbidden) out.push(`${where(ra.file, ra.node)}: assigns the broad role ${forbidden}`);
      }
      if (!valueAt(body(ra.node), 'properties.principalType')) {
        out.push(`${where(ra.file, ra.node)}: no principalType (needed for principals created in the same run)`);
      }
    }
    for (const role of REQUIRED_ROLES) {
      if (!assigned.has(role)) out.push(`role ${role} is never assigned`);
    }
    return out;
  },
};

/** Each role assignment says why, in a comment directly above it. */
export const roleAssignmentsCommented: Rule = {
  name: 'role assignments: each has a comment saying why',
  check: (files) =>
    roleAssignments(files)
      .filter((ra) => leadingComment(ra.node).length < 20)
      .map((ra) => `${where(ra.file, ra.node)}: role assignment '${ra.name}' has no comment saying why`),
};

/** Roles that must be narrow are scoped to the right kind of resource (the key, the queue). */
export const roleScopes: Rule = {
  name: 'role assignments: Crypto User scoped to the key, Message Sender scoped to the queue',
  check: (files) => {
    const out: string[] = [];
    const seen = new Set<string>();
    for (const ra of roleAssignments(files)) {
      for (const role of roleIds(files, ra)) {
        const wantedType = ROLE_SCOPES[role];
        if (!wantedType) continue;
        seen.add(role);
        const scope = valueAt(body(ra.node), 'scope');
        const target = scope?.type === 'identifier' ? findDeclaration(ra.file, scope.text) : undefined;
        const actualType = target?.kind === 'resource' ? resourceType(target.node).type : undefined;
        if (actualType?.toLowerCase() !== wantedType.toLowerCase()) {
          out.push(`${where(ra.file, ra.node)}: role ${role} must be scoped to a ${wantedType}, not ${scope?.text}`);
        }
      }
    }
    for (const role of Object.keys(ROLE_SCOPES)) {
      if (!seen.has(role)) out.push(`role ${role} is never assigned`);
    }
    return out;
  },
};

/** Outputs never carry secrets: no @secure(), no list*() calls, no key, secret or connection string properties. */
export const noSecretsInOutputs: Rule = {
  name: 'outputs: no secrets (keys, connection strings, list*() results, secure values)',
  check: (files) =>
    files.flatMap((file) =>
      declarations(file, 'output').flatMap((output) => {
        const out: string[] = [];
        const at = where(file, output.node);
        if (decorators(output.node).some((d) => d.name === 'secure'))
          out.push(`${at}: output '${output.name}' is @secure()`);
        if (SECRET_NAME.test(output.name)) out.push(`${at}: output '${output.name}' is named like a secret`);
        const value = output.node.namedChildren[output.node.namedChildren.length - 1];
        for (const problem of value ? secretReferences(file, value, new Set()) : []) out.push(`${at}: ${problem}`);
        return out;
      }),
    ),
};

/** Nothing anywhere fetches account keys or builds key-based connection strings: the account has no keys to use. */
export const noKeysAnywhere: Rule = {
  name: 'no list*() key calls and no key-based connection strings anywhere',
  check: (files) =>
    files.flatMap((file) => [
      ...descendants(file.root, 'call_expression')
        .filter((call) => /^list/i.test(calledName(call) ?? ''))
        .map((call) => `${where(file, call)}: calls ${calledName(call)}()`),
      ...descendants(file.root, 'string_content')
        .filter((s) => /AccountKey=|SharedAccessSignature=|UseDevelopmentStorage/i.test(s.text))
        .map((s) => `${where(file, s)}: key-based connection string`),
    ]),
};

/** The app gets the versionless key id, so it follows rotations; a pinned version would never change. */
export const versionlessKeyId: Rule = {
  name: 'the key id passed on is versionless (no keyUriWithVersion)',
  check: (files) =>
    files.flatMap((file) =>
      descendants(file.root, 'property_identifier')
        .filter((p) => p.text === 'keyUriWithVersion')
        .map((p) => `${where(file, p)}: uses keyUriWithVersion`),
    ),
};

/** Every parameter and output is described. */
export const described: Rule = {
  name: 'every param and output has a @description',
  check: (files) =>
    files.flatMap((file) =>
      declarations(file)
        .filter((d) => d.kind === 'param' || d.kind === 'output')
        .filter((d) => {
          const description = decorators(d.node).find((x) => x.name === 'description');
          return !description?.argument || !(stringLiteral(description.argument) ?? '').trim();
        })
        .map((d) => `${where(file, d.node)}: ${d.kind} '${d.name}' has no @description`),
    ),
};

export const ALL_RULES: readonly Rule[] = [
  parsesWithoutErrors,
  localModulesOnly,
  storageHardened,
  keyVaultHardened,
  keyRotationPolicy,
  monitoringLocalAuthDisabled,
  flexConsumptionApp,
  roleDefinitions,
  roleAssignmentsCommented,
  roleScopes,
  noSecretsInOutputs,
  noKeysAnywhere,
  versionlessKeyId,
  described,
];

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/**
 * Every non-existing resource of `type` has each property at its literal value; at least one such resource exists.
 * A value computed from a parameter does not count: these settings must not be switchable by a parameter file.
 */
function requireEach(files: readonly BicepFile[], type: string, wanted: Record<string, string>): string[] {
  const resources = resourcesOfType(files, type);
  if (resources.length === 0) return [`no ${type} resource`];
  return resources.flatMap((r) =>
    Object.entries(wanted).flatMap(([path, value]) => {
      const actual = literalText(valueAt(body(r.node), path));
      return actual === value
        ? []
        : [`${where(r.file, r.node)}: ${r.name}.${path} is ${actual ?? 'not a literal'}, want ${value}`];
    }),
  );
}

function roleAssignments(files: readonly BicepFile[]): Declaration[] {
  return resourcesOfType(files, 'Microsoft.Authorization/roleAssignments');
}

/** The role ids a role assignment's roleDefinitionId refers to, following identifiers to params and variables. */
function roleIds(files: readonly BicepFile[], ra: Declaration): string[] {
  const value = valueAt(body(ra.node), 'properties.roleDefinitionId');
  if (!value) return [];
  const texts = descendants(value, ['string', 'identifier']).map((n) => {
    const resolved = resolve(files, ra.file, n);
    return resolved.kind === 'literal' ? resolved.value : '';
  });
  return [...new Set(texts.join(' ').toLowerCase().match(GUID) ?? [])];
}

const SECRET_NAME = /secret|password|connectionstring|accountkey|sastoken|sas$/i;
const SECRET_PROPERTY =
  /connectionstring|secret|password|sharedkey|masterkey|accesskey|instrumentationkey|^primarykey$|^secondarykey$|^keys$|sastoken/i;

/** What in an output's value expression (following variables) could leak a secret. */
function secretReferences(file: BicepFile, node: SyntaxNode, visited: Set<string>): string[] {
  const out: string[] = [];
  for (const call of descendants(node, 'call_expression')) {
    const name = calledName(call) ?? '';
    if (/^list/i.test(name) || /secret/i.test(name)) out.push(`references ${name}()`);
  }
  for (const prop of descendants(node, 'property_identifier')) {
    if (SECRET_PROPERTY.test(prop.text)) out.push(`references the property ${prop.text}`);
  }
  for (const id of descendants(node, 'identifier')) {
    if (visited.has(id.text)) continue;
    visited.add(id.text);
    const decl = findDeclaration(file, id.text);
    if (decl?.kind === 'param' && decorators(decl.node).some((d) => d.name === 'secure')) {
      out.push(`references the @secure() param ${decl.name}`);
    }
    if (decl?.kind === 'var') {
      const value = decl.node.namedChildren[decl.node.namedChildren.length - 1];
      if (value) out.push(...secretReferences(file, value, visited));
    }
  }
  // Keys of object outputs count too ({ connectionString: ... }).
  for (const prop of descendants(node, 'object_property')) {
    const key = propertyKey(prop);
    if (key && SECRET_PROPERTY.test(key)) out.push(`has an object key ${key}`);
  }
  return out;
}
