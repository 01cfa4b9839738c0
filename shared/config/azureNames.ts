/**
 * Azure Storage naming rules (learn.microsoft.com: "Naming and referencing containers, blobs, and metadata",
 * "Naming queues and metadata", "Understanding the Table service data model"), and the allow-lists of
 * CSE_CONTAINERS / CSE_TABLES.
 */

/** 3-63 characters: lower-case letters, digits and single hyphens, starting and ending with a letter or digit. */
const CONTAINER_OR_QUEUE_RE = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;
/** Containers with a fixed special meaning, valid although they break the pattern. */
const SPECIAL_CONTAINERS = ['$root', '$web', '$logs'];

export function isValidContainerName(name: string): boolean {
  return CONTAINER_OR_QUEUE_RE.test(name) || SPECIAL_CONTAINERS.includes(name);
}

export function isValidQueueName(name: string): boolean {
  return CONTAINER_OR_QUEUE_RE.test(name);
}

/** 3-63 letters and digits, starting with a letter; "tables" is reserved. Table names are case-insensitive. */
export function isValidTableName(name: string): boolean {
  return /^[A-Za-z][A-Za-z0-9]{2,62}$/.test(name) && name.toLowerCase() !== 'tables';
}

/**
 * Property names: C#-identifier-like, at most 255 characters. PartitionKey, RowKey and Timestamp are system
 * properties; the two `_ClientEncryptionMetadata` names are the encryption format's own.
 */
export function isEncryptablePropertyName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]{0,254}$/.test(name) && !RESERVED_PROPERTIES.includes(name);
}

export const RESERVED_PROPERTIES: readonly string[] = [
  'PartitionKey',
  'RowKey',
  'Timestamp',
  '_ClientEncryptionMetadata1',
  '_ClientEncryptionMetadata2',
];

/**
 * Tables the app itself keeps (issue 8: rotation progress). They are never user data, so `*` does not cover them
 * and listing them in CSE_TABLES is a configuration error: clients must not be able to write the rotation state.
 */
export const APP_TABLES: readonly string[] = ['rotations'];

/** CSE_CONTAINERS / CSE_TABLES: `*` (everything except the host's and the app's own), or an explicit list. */
export type NameAllowList = { readonly kind: 'all' } | { readonly kind: 'only'; readonly names: readonly string[] };

/**
 * Whether the app may read and write this container. `*` excludes the Functions host's own containers
 * (`azure-webjobs-*`, e.g. azure-webjobs-hosts, azure-webjobs-secrets) and the `$`-prefixed system containers
 * ($logs, $web, $root); an explicit list allows exactly what it names.
 */
export function isContainerAllowed(list: NameAllowList, name: string): boolean {
  if (list.kind === 'only') return list.names.includes(name);
  return isValidContainerName(name) && !name.startsWith('azure-webjobs-') && !name.startsWith('$');
}

/**
 * Whether the app may use this table (compared case-insensitively, as Azure does). `*` excludes the host's own
 * tables (`AzureWebJobs*`, `AzureFunctions*`, e.g. AzureFunctionsDiagnosticEvents202601), the `$`-prefixed
 * metrics tables and the app's own tables (APP_TABLES).
 */
export function isTableAllowed(list: NameAllowList, name: string): boolean {
  const lower = name.toLowerCase();
  if (APP_TABLES.includes(lower)) return false;
  if (list.kind === 'only') return list.names.some((n) => n.toLowerCase() === lower);
  return isValidTableName(name) && !lower.startsWith('azurewebjobs') && !lower.startsWith('azurefunctions');
}
