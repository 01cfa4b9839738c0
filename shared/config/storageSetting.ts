/**
 * The `AzureWebJobsStorage` setting, read the way the Functions host reads it, so that the app's own Storage
 * clients reach the same account with the same identity as the host's triggers.
 *
 * Host rules (azure-webjobs-sdk StorageClientProvider, Microsoft.Extensions.Azure ClientFactory):
 *  - a value on `AzureWebJobsStorage` itself is a connection string and wins;
 *  - otherwise the section `AzureWebJobsStorage__*` is the identity-based form: `__accountName` gives
 *    `https://<account>.<blob|queue|table>.core.windows.net`, else `__blobServiceUri` / `__queueServiceUri` /
 *    `__tableServiceUri` (`__serviceUri` also serves blob and queue: it is the constructor parameter name the
 *    host falls back to);
 *  - the credential: `__credential=managedidentity` with at most one of `__clientId`, `__managedIdentityClientId`,
 *    `__managedIdentityResourceId`, `__managedIdentityObjectId` (none: the system-assigned identity); otherwise
 *    `__tenantId` + `__clientId` + `__clientSecret` is a service principal; otherwise DefaultAzureCredential
 *    (taking `__tenantId`, `__clientId`/`__managedIdentityClientId`, `__managedIdentityResourceId` as options);
 *  - configuration keys are case-insensitive, and `:` is the same separator as `__`.
 *
 * Where the host would silently pick one of two conflicting settings, or ignore a misspelt one, this reader fails
 * instead (the issue's rule: contradictory or mistyped settings stop start-up). The app needs all three services
 * (blobs, queues for ingestion and rotation work, tables for entities and rotation progress), so every endpoint
 * must be known.
 *
 * Pure: no SDK here; shared/storage/connection.ts builds the clients.
 */
import { SecretString } from './secret';

export interface StorageEndpoints {
  readonly blob: string;
  readonly queue: string;
  readonly table: string;
}

export type StorageSetting = StorageConnectionStringSetting | StorageIdentitySetting;

export interface StorageConnectionStringSetting {
  readonly kind: 'connectionString';
  readonly accountName: string;
  readonly endpoints: StorageEndpoints;
  readonly auth:
    | { readonly kind: 'accountKey'; readonly accountKey: SecretString }
    | { readonly kind: 'sas'; readonly sas: SecretString };
  /** `UseDevelopmentStorage=true` (Azurite on its default ports). */
  readonly development: boolean;
}

export interface StorageIdentitySetting {
  readonly kind: 'identity';
  readonly endpoints: StorageEndpoints;
  readonly credential: StorageCredentialSetting;
}

export type StorageCredentialSetting =
  | {
      readonly kind: 'managedIdentity';
      /** At most one is set; none means the system-assigned identity. */
      readonly clientId?: string;
      readonly resourceId?: string;
      readonly objectId?: string;
    }
  | {
      readonly kind: 'clientSecret';
      readonly tenantId: string;
      readonly clientId: string;
      readonly clientSecret: SecretString;
    }
  | {
      readonly kind: 'default';
      readonly tenantId?: string;
      readonly managedIdentityClientId?: string;
      readonly managedIdentityResourceId?: string;
    };

export const STORAGE_SETTING = 'AzureWebJobsStorage';

/** Azurite's well-known development account (ECOSYSTEM.md §3.1); public by design. */
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const IDENTITY_KEYS = [
  'accountName',
  'blobServiceUri',
  'queueServiceUri',
  'tableServiceUri',
  'serviceUri',
  'credential',
  'clientId',
  'tenantId',
  'clientSecret',
  'managedIdentityClientId',
  'managedIdentityResourceId',
  'managedIdentityObjectId',
] as const;
type IdentityKey = (typeof IDENTITY_KEYS)[number];

const CONNECTION_STRING_KEYS = [
  'DefaultEndpointsProtocol',
  'AccountName',
  'AccountKey',
  'EndpointSuffix',
  'SharedAccessSignature',
  'BlobEndpoint',
  'QueueEndpoint',
  'TableEndpoint',
  'FileEndpoint',
  'BlobSecondaryEndpoint',
  'QueueSecondaryEndpoint',
  'TableSecondaryEndpoint',
  'FileSecondaryEndpoint',
  'UseDevelopmentStorage',
] as const;
type ConnectionStringKey = (typeof CONNECTION_STRING_KEYS)[number];

/** The result: the setting, or the problems found (each starting with the setting name). */
export type StorageSettingResult = { ok: true; value: StorageSetting } | { ok: false; problems: string[] };

/**
 * Reads AzureWebJobsStorage and AzureWebJobsStorage__* from `env`. Reads no other names. Enumerates the keys of
 * `env` (to match names case-insensitively, as the host does) and reads only the matching ones.
 */
export function readStorageSetting(env: Record<string, string | undefined>): StorageSettingResult {
  const problems: string[] = [];
  const section = collectSection(env, problems);
  if (problems.length > 0) return { ok: false, problems };
  const { value, children } = section;
  if (value !== undefined) {
    if (children.size > 0) {
      const names = [...children.values()].map((c) => c.name).join(', ');
      return {
        ok: false,
        problems: [`${STORAGE_SETTING}: a connection string is set, and so is ${names}; remove one of the two forms`],
      };
    }
    return parseConnectionString(value);
  }
  if (children.size === 0) {
    return {
      ok: false,
      problems: [
        `${STORAGE_SETTING} is not set: give a connection string, or the identity-based form ` +
          `(${STORAGE_SETTING}__accountName, or __blobServiceUri, __queueServiceUri and __tableServiceUri)`,
      ],
    };
  }
  return parseIdentitySection(children);
}

interface Child {
  readonly name: string;
  readonly value: string;
}

function collectSection(
  env: Record<string, string | undefined>,
  problems: string[],
): { value: string | undefined; children: Map<IdentityKey, Child> } {
  let value: string | undefined;
  let valueName: string | undefined;
  const children = new Map<IdentityKey, Child>();
  const prefix = STORAGE_SETTING.toLowerCase();
  for (const name of Object.keys(env)) {
    const lower = name.toLowerCase();
    if (!lower.startsWith(prefix)) continue;
    const rest = name.slice(STORAGE_SETTING.length);
    let childName: string | undefined;
    if (rest === '') childName = undefined;
    else if (rest.startsWith('__')) childName = rest.slice(2);
    else if (rest.startsWith(':')) childName = rest.slice(1);
    else continue; // another setting that merely starts with the same letters
    const raw = env[name];
    const text = raw?.trim();
    if (text === undefined || text === '') continue;
    if (childName === undefined) {
      if (value !== undefined && value !== text) {
        problems.push(`${STORAGE_SETTING}: set twice with different values (${valueName} and ${name})`);
      }
      value = text;
      valueName = name;
      continue;
    }
    const key = IDENTITY_KEYS.find((k) => k.toLowerCase() === childName.toLowerCase());
    if (key === undefined) {
      problems.push(
        `${name}: unknown setting; the identity-based form takes ${IDENTITY_KEYS.map((k) => `__${k}`).join(', ')}` +
          (/certificate/i.test(childName) ? ' (certificate credentials are not supported by this app)' : ''),
      );
      continue;
    }
    const previous = children.get(key);
    if (previous !== undefined && previous.value !== text) {
      problems.push(`${STORAGE_SETTING}__${key}: set twice with different values (${previous.name} and ${name})`);
    }
    children.set(key, { name, value: text });
  }
  return { value, children };
}

// ---------------------------------------------------------------------------------------------------------------
// Identity-based form

function parseIdentitySection(children: Map<IdentityKey, Child>): StorageSettingResult {
  const problems: string[] = [];
  const get = (key: IdentityKey): string | undefined => children.get(key)?.value;
  const label = (key: IdentityKey): string => children.get(key)?.name ?? `${STORAGE_SETTING}__${key}`;

  let endpoints: StorageEndpoints | undefined;
  const accountName = get('accountName');
  const uriKeys = (['blobServiceUri', 'queueServiceUri', 'tableServiceUri', 'serviceUri'] as const).filter(
    (k) => get(k) !== undefined,
  );
  if (accountName !== undefined) {
    if (uriKeys.length > 0) {
      problems.push(
        `${label('accountName')}: set together with ${uriKeys.map(label).join(', ')}; ` +
          'the host would use the account name and ignore the URIs, so give only one form',
      );
    } else if (!/^[a-z0-9]{3,24}$/.test(accountName)) {
      problems.push(
        `${label('accountName')}: ${JSON.stringify(accountName)} is not a storage account name (3-24 lower-case letters and digits)`,
      );
    } else {
      endpoints = {
        blob: `https://${accountName}.blob.core.windows.net`,
        queue: `https://${accountName}.queue.core.windows.net`,
        table: `https://${accountName}.table.core.windows.net`,
      };
    }
  } else {
    const uri = (key: 'blobServiceUri' | 'queueServiceUri' | 'tableServiceUri', fallback?: 'serviceUri') => {
      const chosen =
        get(key) !== undefined ? key : fallback !== undefined && get(fallback) !== undefined ? fallback : undefined;
      if (chosen === undefined) {
        problems.push(
          `${STORAGE_SETTING}__${key} is missing (the app uses blobs, queues and tables; or set ${STORAGE_SETTING}__accountName)`,
        );
        return undefined;
      }
      const checked = checkServiceUri(get(chosen) as string);
      if (typeof checked !== 'string') return checked;
      problems.push(`${label(chosen)}: ${checked}`);
      return undefined;
    };
    const blob = uri('blobServiceUri', 'serviceUri');
    const queue = uri('queueServiceUri', 'serviceUri');
    const table = uri('tableServiceUri');
    if (blob !== undefined && queue !== undefined && table !== undefined) {
      endpoints = { blob: blob.url, queue: queue.url, table: table.url };
    }
  }

  const credential = parseIdentityCredential(get, label, problems);
  if (problems.length > 0 || endpoints === undefined || credential === undefined) return { ok: false, problems };
  return { ok: true, value: { kind: 'identity', endpoints, credential } };
}

/** A service URI must be an absolute https URL without credentials or query (http only for loopback). */
function checkServiceUri(text: string): { url: string } | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${JSON.stringify(text)} is not an absolute URL`;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    return `${JSON.stringify(text)} must use https`;
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    return `${JSON.stringify(`${url.protocol}//${url.host}${url.pathname}`)} must not carry user info, a query or a fragment (identity-based connections use no SAS)`;
  }
  return { url: `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}` };
}

function parseIdentityCredential(
  get: (key: IdentityKey) => string | undefined,
  label: (key: IdentityKey) => string,
  problems: string[],
): StorageCredentialSetting | undefined {
  const credential = get('credential');
  const clientId = get('clientId');
  const tenantId = get('tenantId');
  const clientSecret = get('clientSecret');
  const miClientId = get('managedIdentityClientId');
  const miResourceId = get('managedIdentityResourceId');
  const miObjectId = get('managedIdentityObjectId');
  const before = problems.length;
  const guid = (key: IdentityKey, value: string | undefined): void => {
    if (value !== undefined && !GUID_RE.test(value))
      problems.push(`${label(key)}: ${JSON.stringify(value)} is not a GUID`);
  };
  guid('clientId', clientId);
  guid('tenantId', tenantId);
  guid('managedIdentityClientId', miClientId);
  guid('managedIdentityObjectId', miObjectId);
  if (
    miResourceId !== undefined &&
    !/^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/providers\/microsoft\.managedidentity\/userassignedidentities\/[^/]+$/i.test(
      miResourceId,
    )
  ) {
    problems.push(
      `${label('managedIdentityResourceId')}: not a user-assigned identity resource id (/subscriptions/.../userAssignedIdentities/<name>)`,
    );
  }

  if (credential !== undefined) {
    if (credential.toLowerCase() !== 'managedidentity') {
      problems.push(
        `${label('credential')}: ${JSON.stringify(credential)} is not supported; use "managedidentity" or leave it unset`,
      );
      return undefined;
    }
    const ids = (
      ['clientId', 'managedIdentityClientId', 'managedIdentityResourceId', 'managedIdentityObjectId'] as const
    ).filter((k) => get(k) !== undefined);
    if (ids.length > 1)
      problems.push(`${ids.map(label).join(' and ')}: give only one identity for the managed identity`);
    for (const key of ['tenantId', 'clientSecret'] as const) {
      if (get(key) !== undefined)
        problems.push(`${label(key)}: not used with ${label('credential')}=managedidentity; remove it`);
    }
    if (problems.length > before) return undefined;
    const id = clientId ?? miClientId;
    return {
      kind: 'managedIdentity',
      ...(id !== undefined ? { clientId: id } : {}),
      ...(miResourceId !== undefined ? { resourceId: miResourceId } : {}),
      ...(miObjectId !== undefined ? { objectId: miObjectId } : {}),
    };
  }
  if (miObjectId !== undefined) {
    problems.push(`${label('managedIdentityObjectId')}: only used with ${STORAGE_SETTING}__credential=managedidentity`);
  }
  if (clientSecret !== undefined) {
    if (tenantId === undefined || clientId === undefined) {
      problems.push(
        `${label('clientSecret')}: a service principal also needs ${STORAGE_SETTING}__tenantId and __clientId`,
      );
    }
    if (problems.length > before) return undefined;
    return {
      kind: 'clientSecret',
      tenantId: tenantId as string,
      clientId: clientId as string,
      clientSecret: new SecretString(clientSecret),
    };
  }
  if (problems.length > before) return undefined;
  const managedIdentityClientId = miClientId ?? clientId;
  return {
    kind: 'default',
    ...(tenantId !== undefined ? { tenantId } : {}),
    ...(managedIdentityClientId !== undefined ? { managedIdentityClientId } : {}),
    ...(miResourceId !== undefined ? { managedIdentityResourceId: miResourceId } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Connection strings

/**
 * Parses a storage connection string with the .NET rules the host uses: `Key=Value` pairs separated by `;`,
 * endpoints either explicit (`BlobEndpoint`, ...) or derived from `DefaultEndpointsProtocol`, `AccountName` and
 * `EndpointSuffix` (default core.windows.net), credentials `AccountKey` or `SharedAccessSignature`. Messages
 * never repeat the connection string or any value of it except endpoints and the account name.
 */
export function parseConnectionString(text: string): StorageSettingResult {
  const problems: string[] = [];
  const fail = (message: string): StorageSettingResult => ({ ok: false, problems: [`${STORAGE_SETTING}: ${message}`] });
  const pairs = new Map<ConnectionStringKey, string>();
  for (const part of text.split(';')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) return fail('not a connection string (expected Key=Value pairs separated by ";")');
    const rawKey = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    const key = CONNECTION_STRING_KEYS.find((k) => k === rawKey);
    if (key === undefined) {
      const cased = CONNECTION_STRING_KEYS.find((k) => k.toLowerCase() === rawKey.toLowerCase());
      return fail(
        cased !== undefined
          ? `connection string key ${JSON.stringify(rawKey)} must be written ${JSON.stringify(cased)}`
          : `unknown connection string key ${JSON.stringify(rawKey.slice(0, 40))}`,
      );
    }
    if (pairs.has(key)) return fail(`connection string key ${key} appears twice`);
    pairs.set(key, value);
  }
  const useDev = pairs.get('UseDevelopmentStorage');
  if (useDev !== undefined) {
    if (useDev.toLowerCase() !== 'true') return fail('UseDevelopmentStorage must be "true"');
    if (pairs.size > 1) return fail('UseDevelopmentStorage=true takes no other keys (give explicit endpoints instead)');
    return {
      ok: true,
      value: {
        kind: 'connectionString',
        accountName: DEV_ACCOUNT,
        endpoints: {
          blob: `http://127.0.0.1:10000/${DEV_ACCOUNT}`,
          queue: `http://127.0.0.1:10001/${DEV_ACCOUNT}`,
          table: `http://127.0.0.1:10002/${DEV_ACCOUNT}`,
        },
        auth: { kind: 'accountKey', accountKey: new SecretString(DEV_KEY) },
        development: true,
      },
    };
  }

  const protocol = pairs.get('DefaultEndpointsProtocol')?.toLowerCase();
  if (protocol !== undefined && protocol !== 'https' && protocol !== 'http') {
    problems.push(`${STORAGE_SETTING}: DefaultEndpointsProtocol must be https or http`);
  }
  const accountName = pairs.get('AccountName');
  const suffix = pairs.get('EndpointSuffix') ?? 'core.windows.net';
  const endpoint = (service: 'blob' | 'queue' | 'table', key: 'BlobEndpoint' | 'QueueEndpoint' | 'TableEndpoint') => {
    const explicit = pairs.get(key);
    if (explicit !== undefined) {
      let url: URL;
      try {
        url = new URL(explicit);
      } catch {
        problems.push(`${STORAGE_SETTING}: ${key} is not an absolute URL`);
        return undefined;
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:')
        problems.push(`${STORAGE_SETTING}: ${key} must be an http(s) URL`);
      if (url.search !== '' || url.username !== '')
        problems.push(
          `${STORAGE_SETTING}: ${key} must not carry a query or user info (put a SAS in SharedAccessSignature)`,
        );
      return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
    }
    if (protocol !== undefined && accountName !== undefined) return `${protocol}://${accountName}.${service}.${suffix}`;
    problems.push(
      `${STORAGE_SETTING}: no ${service} endpoint (give ${key}, or DefaultEndpointsProtocol and AccountName; the app uses blobs, queues and tables)`,
    );
    return undefined;
  };
  const blob = endpoint('blob', 'BlobEndpoint');
  const queue = endpoint('queue', 'QueueEndpoint');
  const table = endpoint('table', 'TableEndpoint');

  const accountKey = pairs.get('AccountKey');
  const sas = pairs.get('SharedAccessSignature');
  let auth: StorageConnectionStringSetting['auth'] | undefined;
  if (accountKey !== undefined && sas !== undefined) {
    problems.push(`${STORAGE_SETTING}: give either AccountKey or SharedAccessSignature, not both`);
  } else if (accountKey !== undefined) {
    if (accountName === undefined) problems.push(`${STORAGE_SETTING}: AccountKey needs AccountName`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(accountKey) || accountKey.length % 4 !== 0) {
      problems.push(`${STORAGE_SETTING}: AccountKey is not base64`);
    }
    auth = { kind: 'accountKey', accountKey: new SecretString(accountKey) };
  } else if (sas !== undefined) {
    if (sas.replace(/^\?/, '') === '') problems.push(`${STORAGE_SETTING}: SharedAccessSignature is empty`);
    auth = { kind: 'sas', sas: new SecretString(sas.replace(/^\?/, '')) };
  } else {
    problems.push(`${STORAGE_SETTING}: the connection string has no AccountKey or SharedAccessSignature`);
  }
  const name = accountName ?? (blob !== undefined ? accountNameFromUrl(blob) : undefined);
  if (name === undefined && problems.length === 0) {
    problems.push(`${STORAGE_SETTING}: cannot tell the account name (give AccountName)`);
  }
  if (problems.length > 0 || blob === undefined || queue === undefined || table === undefined || auth === undefined) {
    return { ok: false, problems };
  }
  return {
    ok: true,
    value: {
      kind: 'connectionString',
      accountName: name as string,
      endpoints: { blob, queue, table },
      auth,
      development: false,
    },
  };
}

/** `https://acct.blob.core.windows.net` -> acct; `http://127.0.0.1:10000/acct` -> acct (path style). */
function accountNameFromUrl(url: string): string | undefined {
  const parsed = new URL(url);
  if (/^[0-9.]+$/.test(parsed.hostname) || parsed.hostname === 'localhost') {
    return parsed.pathname.split('/')[1] || undefined;
  }
  return parsed.hostname.split('.')[0] || undefined;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === '[::1]';
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
