/**
 * Storage accounts named by connection settings (`AzureWebJobsStorage`, or a binding's `connection`), as clients
 * for the host's own work: queue triggers and outputs, and timer schedule status blobs.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { HostStartError } from './errors';
import type { Settings } from './settings';

export const DEFAULT_CONNECTION = 'AzureWebJobsStorage';

export interface StorageAccount {
  /** The setting the connection string came from. */
  readonly settingName: string;
  readonly connectionString: string;
  readonly queueService: QueueServiceClient;
  readonly blobService: BlobServiceClient;
}

/** Parses `key=value;...`; keys are case-insensitive in the SDKs, so they are lower-cased here. */
export function parseConnectionString(text: string): Map<string, string> {
  const parts = new Map<string, string>();
  for (const segment of text.split(';')) {
    if (segment.trim() === '') continue;
    const eq = segment.indexOf('=');
    if (eq <= 0) throw new Error(`"${segment.slice(0, 40)}" is not a key=value pair`);
    parts.set(segment.slice(0, eq).trim().toLowerCase(), segment.slice(eq + 1).trim());
  }
  return parts;
}

/**
 * Checks that a connection string names an account the SDKs can use, with a message that says what is missing.
 * Never echoes the string (it holds the account key).
 */
export function validateConnectionString(text: string, settingName: string): void {
  let parts: Map<string, string>;
  try {
    parts = parseConnectionString(text);
  } catch (cause) {
    throw new HostStartError(`${settingName} is not a valid connection string: ${(cause as Error).message}.`);
  }
  if (parts.get('usedevelopmentstorage')?.toLowerCase() === 'true') return;
  const hasKey = parts.has('accountname') && parts.has('accountkey');
  const hasSas = parts.has('sharedaccesssignature');
  if (!hasKey && !hasSas) {
    throw new HostStartError(
      `${settingName} is not a valid connection string: it needs AccountName and AccountKey (or ` +
        'SharedAccessSignature), or UseDevelopmentStorage=true.',
    );
  }
  const explicit = parts.has('queueendpoint') && parts.has('blobendpoint');
  if (
    !explicit &&
    !(parts.has('accountname') && (parts.has('endpointsuffix') || parts.has('defaultendpointsprotocol')))
  ) {
    throw new HostStartError(
      `${settingName} is not a valid connection string: it needs BlobEndpoint and QueueEndpoint, or ` +
        'AccountName with DefaultEndpointsProtocol/EndpointSuffix.',
    );
  }
  for (const key of ['blobendpoint', 'queueendpoint', 'tableendpoint']) {
    const url = parts.get(key);
    if (url !== undefined && !URL.canParse(url)) {
      throw new HostStartError(`${settingName} is not a valid connection string: ${key} is not a URL.`);
    }
  }
}

const pipelineOptions = {
  // Fail over in seconds rather than a minute: a local host should say quickly that storage is gone.
  retryOptions: { maxTries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000, tryTimeoutInMs: 30_000 },
};

/** Opens the account named by a connection setting (validated; not contacted). */
export function openStorageAccount(settings: Settings, connection: string | undefined): StorageAccount {
  const settingName = resolveConnectionSettingName(settings, connection);
  const connectionString = settings[settingName] ?? '';
  validateConnectionString(connectionString, settingName);
  try {
    return {
      settingName,
      connectionString,
      queueService: QueueServiceClient.fromConnectionString(connectionString, pipelineOptions),
      blobService: BlobServiceClient.fromConnectionString(connectionString, pipelineOptions),
    };
  } catch (cause) {
    throw new HostStartError(`${settingName} is not a valid connection string: ${(cause as Error).message}`);
  }
}

/**
 * The setting a binding's `connection` names. Like the Functions host, `connection: 'X'` also finds
 * `AzureWebJobsX`, and an empty connection means `AzureWebJobsStorage`.
 */
export function resolveConnectionSettingName(settings: Settings, connection: string | undefined): string {
  const name = connection === undefined || connection.trim() === '' ? DEFAULT_CONNECTION : connection.trim();
  for (const candidate of [name, `AzureWebJobs${name}`]) {
    if ((settings[candidate] ?? '') !== '') return candidate;
  }
  const identityBased = Object.keys(settings).some((k) => k.startsWith(`${name}__`));
  if (identityBased) {
    throw new HostStartError(
      `The connection '${name}' is configured in the identity-based form (${name}__...), which the local host does ` +
        `not support; set ${name} to a connection string (e.g. Azurite's) for local runs.`,
    );
  }
  throw new HostStartError(`The connection setting '${name}' is not set (a binding's "connection" names it).`);
}

/**
 * Contacts the account's queue and blob services once, so that a wrong key or an unreachable endpoint is a
 * start-up error rather than a stream of polling errors.
 */
export async function probeStorageAccount(account: StorageAccount, timeoutMs = 10_000): Promise<void> {
  const probeOptions = { retryOptions: { maxTries: 1, tryTimeoutInMs: timeoutMs } };
  const checks: [string, () => Promise<unknown>][] = [
    [
      'queue',
      () =>
        QueueServiceClient.fromConnectionString(account.connectionString, probeOptions)
          .listQueues({ abortSignal: AbortSignal.timeout(timeoutMs) })
          .byPage({ maxPageSize: 1 })
          .next(),
    ],
    [
      'blob',
      () =>
        BlobServiceClient.fromConnectionString(account.connectionString, probeOptions)
          .listContainers({ abortSignal: AbortSignal.timeout(timeoutMs) })
          .byPage({ maxPageSize: 1 })
          .next(),
    ],
  ];
  for (const [service, check] of checks) {
    try {
      await check();
    } catch (cause) {
      const endpoint = service === 'queue' ? account.queueService.url : account.blobService.url;
      const hint = /usedevelopmentstorage=true/i.test(account.connectionString.replace(/\s/g, ''))
        ? ` UseDevelopmentStorage=true means an Azurite already running on ports 10000-10002; unset ${account.settingName} to let the local host start one.`
        : '';
      throw new HostStartError(
        `Cannot use the ${service} service at ${endpoint} (${account.settingName}): ${describeStorageError(cause)}${hint}`,
      );
    }
  }
}

function describeStorageError(error: unknown): string {
  const e = error as { code?: string; statusCode?: number; message?: string; name?: string };
  if (e.name === 'AbortError') return 'no answer (timed out).';
  if (e.statusCode === 403) return `the account key or SAS was rejected (403 ${e.code ?? ''}).`.replace(' )', ')');
  const text = e.code ?? e.message ?? String(error);
  return `${text}${e.statusCode ? ` (HTTP ${e.statusCode})` : ''}.`;
}
