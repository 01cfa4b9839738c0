/**
 * The app's configuration: every app setting it reads, parsed once at start-up into a typed, immutable object.
 *
 * Settings come from app settings (Azure) or the environment / local.settings.json `Values` (locally), which all
 * arrive as environment variables; `loadConfig` takes them as a plain record so tests can pass their own.
 * It reads exactly the names in CSE_SETTING_NAMES, AzureWebJobsStorage (and its `__` identity-based section) and
 * AZURE_CLIENT_ID, nothing else.
 *
 * Parsing is strict: a value that is present must be valid (a mistyped boolean or list is an error, never a
 * silent default), an empty value counts as unset, and values are trimmed. Every problem found is reported at
 * once, in one CseError 'ConfigurationError' whose message names each setting and what is wrong with it.
 */
import { CseError } from '../errors';
import { parseKeyId, parseVaultHost, type KeyId } from '../keys/keyId';
import {
  APP_TABLES,
  isContainerAllowed,
  isEncryptablePropertyName,
  isTableAllowed,
  isValidContainerName,
  isValidQueueName,
  isValidTableName,
  type NameAllowList,
} from './azureNames';
import { parseSchedule, type RotationSchedule } from './schedule';
import { CSE_SETTING_NAMES, type CseSettingName } from './settingNames';
import { readStorageSetting, type StorageSetting } from './storageSetting';

export interface CseConfig {
  /** AzureWebJobsStorage: the storage account (connection string or identity-based). */
  readonly storage: StorageSetting;
  /** CSE_KEY_ID: the active key (new writes, rotation target). `keyId.id` is the canonical id text. */
  readonly keyId: KeyId;
  /** CSE_LOCAL_KEYS: path of a JWK Set file of local keys. */
  readonly localKeysPath: string | undefined;
  /** CSE_ALLOWED_KEY_VAULTS: lower-case vault hosts (default: the vault of CSE_KEY_ID, or none). */
  readonly allowedKeyVaults: readonly string[];
  /** CSE_ALLOW_V1: read legacy v1.0 blobs, messages (and table 1.0 entities). */
  readonly allowV1: boolean;
  /** CSE_ALLOW_PLAINTEXT_READS: serve blobs that carry no encryption data. */
  readonly allowPlaintextReads: boolean;
  /** CSE_CONTAINERS (use isContainerAllowed). */
  readonly containers: NameAllowList;
  /** CSE_TABLES (use isTableAllowed). */
  readonly tables: NameAllowList;
  /** CSE_TABLE_PROTOCOL: format of new table writes. */
  readonly tableProtocol: '1.0' | '2.0';
  /** CSE_TABLE_ENCRYPTED_PROPERTIES, keyed by lower-case table name (use encryptedPropertiesFor). */
  readonly tableEncryptedProperties: ReadonlyMap<string, readonly string[]>;
  /** CSE_INGEST_QUEUE. */
  readonly ingestQueue: string;
  /** CSE_INGEST_TARGET_CONTAINER. */
  readonly ingestTargetContainer: string;
  /** CSE_ROTATION_SCHEDULE (`text` is what a `%CSE_ROTATION_SCHEDULE%` binding expression resolves to). */
  readonly rotationSchedule: RotationSchedule;
  /** CSE_ROTATION_CONCURRENCY: maximum concurrent re-wraps per worker. */
  readonly rotationConcurrency: number;
  /** CSE_ROTATION_REENCRYPT_V1: rotations the app starts by itself (timer, Key Vault events) re-encrypt v1.0 blobs to v2.0. */
  readonly rotationReencryptV1: boolean;
  /** AZURE_CLIENT_ID: user-assigned managed identity for Key Vault (unset: DefaultAzureCredential). */
  readonly azureClientId: string | undefined;
}

/** The default of every CSE_* setting (undefined: no default; required or optional as documented). */
export const CSE_SETTING_DEFAULTS: Readonly<Record<CseSettingName, string | undefined>> = {
  CSE_KEY_ID: undefined,
  CSE_LOCAL_KEYS: undefined,
  CSE_ALLOWED_KEY_VAULTS: undefined,
  CSE_ALLOW_V1: 'false',
  CSE_ALLOW_PLAINTEXT_READS: 'false',
  CSE_CONTAINERS: '*',
  CSE_TABLES: '*',
  CSE_TABLE_PROTOCOL: '2.0',
  CSE_TABLE_ENCRYPTED_PROPERTIES: undefined,
  CSE_INGEST_QUEUE: 'ingest',
  CSE_INGEST_TARGET_CONTAINER: 'encrypted',
  CSE_ROTATION_SCHEDULE: '0 0 3 * * *',
  CSE_ROTATION_CONCURRENCY: '16',
  CSE_ROTATION_REENCRYPT_V1: 'false',
};

/** Setting names outside CSE_*: the Functions host's storage setting and the Key Vault identity. */
export const AZURE_CLIENT_ID = 'AZURE_CLIENT_ID';

export const MAX_ROTATION_CONCURRENCY = 1000;

type Env = Record<string, string | undefined>;

/** Reads and validates the configuration. Throws CseError 'ConfigurationError' listing every problem. */
export function loadConfig(env: Env = process.env): CseConfig {
  const problems: string[] = [];
  const read = (name: CseSettingName | typeof AZURE_CLIENT_ID): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const setting = (name: CseSettingName): string | undefined => read(name) ?? CSE_SETTING_DEFAULTS[name];
  // Read every CSE setting exactly once, in list order, so that unknown-name checks and tests see all of them.
  const values = Object.fromEntries(CSE_SETTING_NAMES.map((name) => [name, setting(name)])) as Record<
    CseSettingName,
    string | undefined
  >;

  const storageResult = readStorageSetting(env);
  if (!storageResult.ok) problems.push(...storageResult.problems);

  const keyId = parseActiveKeyId(values.CSE_KEY_ID, problems);
  const localKeysPath = values.CSE_LOCAL_KEYS;
  if (keyId?.kind === 'local' && localKeysPath === undefined) {
    problems.push(
      `CSE_KEY_ID: ${JSON.stringify(keyId.id)} is a local key id, but CSE_LOCAL_KEYS (the key file) is not set`,
    );
  }
  const allowedKeyVaults = parseAllowedVaults(values.CSE_ALLOWED_KEY_VAULTS, keyId, problems);

  const allowV1 = parseBoolean('CSE_ALLOW_V1', values.CSE_ALLOW_V1 as string, problems);
  const allowPlaintextReads = parseBoolean(
    'CSE_ALLOW_PLAINTEXT_READS',
    values.CSE_ALLOW_PLAINTEXT_READS as string,
    problems,
  );
  const containers = parseNameList('CSE_CONTAINERS', values.CSE_CONTAINERS as string, 'container', problems);
  const tables = parseNameList('CSE_TABLES', values.CSE_TABLES as string, 'table', problems);

  const tableProtocolText = values.CSE_TABLE_PROTOCOL as string;
  let tableProtocol: '1.0' | '2.0' = '2.0';
  if (tableProtocolText === '1.0' || tableProtocolText === '2.0') {
    tableProtocol = tableProtocolText;
    if (tableProtocol === '1.0' && allowV1 === false) {
      problems.push('CSE_TABLE_PROTOCOL: 1.0 (the legacy CBC format) needs CSE_ALLOW_V1=true');
    }
  } else {
    problems.push(`CSE_TABLE_PROTOCOL: expected 2.0 or 1.0, got ${JSON.stringify(tableProtocolText)}`);
  }

  const tableEncryptedProperties = parseEncryptedProperties(values.CSE_TABLE_ENCRYPTED_PROPERTIES, tables, problems);

  const ingestQueue = values.CSE_INGEST_QUEUE as string;
  if (!isValidQueueName(ingestQueue)) {
    problems.push(
      `CSE_INGEST_QUEUE: ${JSON.stringify(ingestQueue)} is not a valid queue name (3-63 lower-case letters, digits and single hyphens)`,
    );
  }
  const ingestTargetContainer = values.CSE_INGEST_TARGET_CONTAINER as string;
  if (!isValidContainerName(ingestTargetContainer)) {
    problems.push(
      `CSE_INGEST_TARGET_CONTAINER: ${JSON.stringify(ingestTargetContainer)} is not a valid container name (3-63 lower-case letters, digits and single hyphens)`,
    );
  } else if (containers !== undefined && !isContainerAllowed(containers, ingestTargetContainer)) {
    problems.push(
      `CSE_INGEST_TARGET_CONTAINER: ${JSON.stringify(ingestTargetContainer)} is not allowed by CSE_CONTAINERS`,
    );
  }

  const schedule = parseSchedule(values.CSE_ROTATION_SCHEDULE as string);
  if (!schedule.ok) problems.push(`CSE_ROTATION_SCHEDULE: ${schedule.reason}`);

  const concurrencyText = values.CSE_ROTATION_CONCURRENCY as string;
  const rotationConcurrency = Number(concurrencyText);
  if (!/^[0-9]+$/.test(concurrencyText) || rotationConcurrency < 1 || rotationConcurrency > MAX_ROTATION_CONCURRENCY) {
    problems.push(
      `CSE_ROTATION_CONCURRENCY: expected a whole number from 1 to ${MAX_ROTATION_CONCURRENCY}, got ${JSON.stringify(concurrencyText)}`,
    );
  }

  const rotationReencryptV1 = parseBoolean(
    'CSE_ROTATION_REENCRYPT_V1',
    values.CSE_ROTATION_REENCRYPT_V1 as string,
    problems,
  );

  const azureClientId = read(AZURE_CLIENT_ID);
  if (azureClientId !== undefined && !GUID_RE.test(azureClientId)) {
    problems.push(
      `AZURE_CLIENT_ID: ${JSON.stringify(azureClientId)} is not a GUID (the client id of a user-assigned managed identity)`,
    );
  }

  if (problems.length > 0) {
    const message =
      problems.length === 1
        ? `invalid configuration: ${problems[0]}`
        : `invalid configuration:\n- ${problems.join('\n- ')}`;
    throw new CseError('ConfigurationError', message);
  }
  return Object.freeze({
    storage: (storageResult as { value: StorageSetting }).value,
    keyId: keyId as KeyId,
    localKeysPath,
    allowedKeyVaults: Object.freeze(allowedKeyVaults),
    allowV1: allowV1 as boolean,
    allowPlaintextReads: allowPlaintextReads as boolean,
    containers: containers as NameAllowList,
    tables: tables as NameAllowList,
    tableProtocol,
    tableEncryptedProperties,
    ingestQueue,
    ingestTargetContainer,
    rotationSchedule: (schedule as { schedule: RotationSchedule }).schedule,
    rotationConcurrency,
    rotationReencryptV1: rotationReencryptV1 as boolean,
    azureClientId,
  });
}

/** The configured encrypted properties of a table (CSE_TABLE_ENCRYPTED_PROPERTIES), matched case-insensitively. */
export function encryptedPropertiesFor(
  config: Pick<CseConfig, 'tableEncryptedProperties'>,
  table: string,
): readonly string[] {
  return config.tableEncryptedProperties.get(table.toLowerCase()) ?? [];
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseActiveKeyId(text: string | undefined, problems: string[]): KeyId | undefined {
  if (text === undefined) {
    problems.push('CSE_KEY_ID is not set: give the active key (a Key Vault key URL, or a kid of CSE_LOCAL_KEYS)');
    return undefined;
  }
  const parsed = parseKeyId(text);
  if (!parsed.ok) {
    problems.push(`CSE_KEY_ID: ${parsed.reason}`);
    return undefined;
  }
  return parsed.keyId;
}

function parseAllowedVaults(text: string | undefined, keyId: KeyId | undefined, problems: string[]): string[] {
  if (text === undefined) return keyId?.kind === 'keyVault' ? [keyId.host] : [];
  const items = splitList('CSE_ALLOWED_KEY_VAULTS', text, problems);
  if (items === undefined) return [];
  const hosts: string[] = [];
  for (const item of items) {
    if (item === '*') {
      problems.push('CSE_ALLOWED_KEY_VAULTS: "*" is not allowed; list the vault hosts whose keys may be used');
      continue;
    }
    const parsed = parseVaultHost(item);
    if (!parsed.ok) problems.push(`CSE_ALLOWED_KEY_VAULTS: ${parsed.reason}`);
    else if (hosts.includes(parsed.host)) problems.push(`CSE_ALLOWED_KEY_VAULTS: ${parsed.host} is listed twice`);
    else hosts.push(parsed.host);
  }
  if (keyId?.kind === 'keyVault' && hosts.length === items.length && !hosts.includes(keyId.host)) {
    problems.push(
      `CSE_ALLOWED_KEY_VAULTS: does not include ${keyId.host}, the vault of CSE_KEY_ID (the active key must be allowed)`,
    );
  }
  return hosts;
}

function parseBoolean(name: CseSettingName, text: string, problems: string[]): boolean | undefined {
  const lower = text.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  problems.push(`${name}: expected true or false, got ${JSON.stringify(text)}`);
  return undefined;
}

/**
 * Splits a comma-separated list strictly: items are trimmed, and an empty item (`a,,b`, a trailing comma) is an
 * error rather than something to skip.
 */
function splitList(name: string, text: string, problems: string[], separator = ','): string[] | undefined {
  const items = text.split(separator).map((item) => item.trim());
  if (items.some((item) => item === '')) {
    problems.push(`${name}: empty item in ${JSON.stringify(text)} (items are separated by single "${separator}")`);
    return undefined;
  }
  return items;
}

function parseNameList(
  name: 'CSE_CONTAINERS' | 'CSE_TABLES',
  text: string,
  kind: 'container' | 'table',
  problems: string[],
): NameAllowList | undefined {
  const items = splitList(name, text, problems);
  if (items === undefined) return undefined;
  if (items.includes('*')) {
    if (items.length > 1) {
      problems.push(`${name}: "*" means all ${kind}s and cannot be combined with names`);
      return undefined;
    }
    return { kind: 'all' };
  }
  const before = problems.length;
  const seen = new Set<string>();
  for (const item of items) {
    const valid = kind === 'container' ? isValidContainerName(item) : isValidTableName(item);
    if (!valid) {
      problems.push(
        kind === 'container'
          ? `${name}: ${JSON.stringify(item)} is not a valid container name (3-63 lower-case letters, digits and single hyphens)`
          : `${name}: ${JSON.stringify(item)} is not a valid table name (3-63 letters and digits, starting with a letter)`,
      );
      continue;
    }
    const key = kind === 'table' ? item.toLowerCase() : item;
    if (kind === 'table' && APP_TABLES.includes(key)) {
      problems.push(
        `${name}: ${JSON.stringify(item)} is the app's own table (rotation progress) and cannot be opened to clients`,
      );
    }
    if (seen.has(key)) problems.push(`${name}: ${JSON.stringify(item)} is listed twice`);
    seen.add(key);
  }
  if (problems.length > before) return undefined;
  return { kind: 'only', names: Object.freeze([...items]) };
}

/** `table:a,b;other:c` -> Map(lower-case table -> property names). */
function parseEncryptedProperties(
  text: string | undefined,
  tables: NameAllowList | undefined,
  problems: string[],
): ReadonlyMap<string, readonly string[]> {
  const result = new Map<string, readonly string[]>();
  if (text === undefined) return result;
  const name = 'CSE_TABLE_ENCRYPTED_PROPERTIES';
  const entries = splitList(name, text, problems, ';');
  if (entries === undefined) return result;
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    if (colon < 0) {
      problems.push(`${name}: ${JSON.stringify(entry)} must have the form table:property1,property2`);
      continue;
    }
    const table = entry.slice(0, colon).trim();
    if (!isValidTableName(table)) {
      problems.push(`${name}: ${JSON.stringify(table)} is not a valid table name`);
      continue;
    }
    if (result.has(table.toLowerCase())) {
      problems.push(`${name}: table ${JSON.stringify(table)} appears twice`);
      continue;
    }
    if (tables !== undefined && !isTableAllowed(tables, table)) {
      problems.push(`${name}: table ${JSON.stringify(table)} is not allowed by CSE_TABLES`);
      continue;
    }
    const properties = splitList(`${name} (table ${table})`, entry.slice(colon + 1), problems);
    if (properties === undefined) continue;
    const bad = properties.filter((p) => !isEncryptablePropertyName(p));
    if (bad.length > 0) {
      problems.push(
        `${name}: ${bad.map((p) => JSON.stringify(p)).join(', ')} cannot be encrypted (property names are identifiers; ` +
          'PartitionKey, RowKey, Timestamp and the _ClientEncryptionMetadata properties are reserved)',
      );
      continue;
    }
    const duplicate = properties.find((p, i) => properties.indexOf(p) !== i);
    if (duplicate !== undefined) {
      problems.push(`${name}: property ${JSON.stringify(duplicate)} of table ${table} is listed twice`);
      continue;
    }
    result.set(table.toLowerCase(), Object.freeze(properties));
  }
  return result;
}
