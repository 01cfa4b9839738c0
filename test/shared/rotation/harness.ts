/**
 * Test harness for the rotation engine against a real Azurite: Storage clients (optionally with a "kill switch"
 * that makes every request after the Nth fail, as if the process had died there), local test keys, helpers that
 * write encrypted blobs and entities, and `pump`, which drives the `rotation-jobs` queue the way the Functions
 * host's queue listener does (lease renewed while a job runs, delete on success, retry on failure, poison after
 * maxDequeueCount, a message whose worker died comes back when its lease expires).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AzureNamedKeyCredential, TableClient, TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient, newPipeline, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { QueueClient, QueueServiceClient, newPipeline as newQueuePipeline } from '@azure/storage-queue';
import { createDefaultHttpClient, type HttpClient } from '@azure/core-rest-pipeline';
import { encryptBlob } from '../../../shared/crypto/blobEncryption';
import { decryptBlob } from '../../../shared/crypto/blobDecryption';
import { parseKeyId } from '../../../shared/keys/keyId';
import { createKeyRing, type KeyRing } from '../../../shared/keys/keyRing';
import { parseJwkSet } from '../../../shared/keys/localKeys';
import type { KeyEncryptionKey } from '../../../shared/keys/kek';
import { ContainerPolicy } from '../../../shared/storage/containerPolicy';
import { validateContainerName } from '../../../shared/storage/names';
import { CseError } from '../../../shared/errors';
import { EncryptedTableClient } from '../../../shared/tables/encryptedTableClient';
import type { RotationDeps, RotationTuning, ScopePolicy } from '../../../shared/rotation/context';
import {
  ROTATION_JOBS_POISON_QUEUE,
  ROTATION_JOBS_QUEUE,
  decodeJob,
  type RotationJob,
} from '../../../shared/rotation/jobMessages';
import { ROTATIONS_TABLE } from '../../../shared/rotation/progressStore';
import { RotationService } from '../../../shared/rotation/rotationService';
import { AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, type RunningAzurite } from '../../helpers/azurite';
import { vectorJwkSetJson, vectorPath } from '../../helpers/vectors';

// ---------------------------------------------------------------------------------------------------------------
// Keys

export const KEY_A = 'local:rotation-a';
export const KEY_B = 'local:rotation-b';
/** The golden vectors' keys (Python-written blobs in test/fixtures/vectors). */
export const VECTOR_OCT = 'local:kek-1';
export const VECTOR_RSA = 'local:rsa-1';

export interface TestKeys {
  /** JWK Set JSON with A, B and the vector keys. */
  readonly allJson: string;
  /** JWK Set JSON with B alone: what decrypts everything after a rotation to B. */
  readonly onlyBJson: string;
  readonly ring: KeyRing;
  readonly onlyB: KeyRing;
  readonly a: KeyEncryptionKey;
  readonly b: KeyEncryptionKey;
}

function octJwk(kid: string): Record<string, string> {
  return { kid, kty: 'oct', alg: 'A256KW', k: randomBytes(32).toString('base64url') };
}

export async function testKeys(): Promise<TestKeys> {
  const a = octJwk(KEY_A);
  const b = octJwk(KEY_B);
  const vectors = (JSON.parse(vectorJwkSetJson()) as { keys: unknown[] }).keys;
  const allJson = JSON.stringify({ keys: [a, b, ...vectors] });
  const onlyBJson = JSON.stringify({ keys: [b] });
  const ring = await keyRingFor(allJson, KEY_B);
  const onlyB = await keyRingFor(onlyBJson, KEY_B);
  return { allJson, onlyBJson, ring, onlyB, a: await ring.keyForWriting(KEY_A), b: await ring.keyForWriting(KEY_B) };
}

async function keyRingFor(json: string, active: string): Promise<KeyRing> {
  const parsed = parseKeyId(active);
  if (!parsed.ok) throw new Error(parsed.reason);
  return createKeyRing(
    { keyId: parsed.keyId, localKeysPath: undefined, allowedKeyVaults: [] },
    { localKeys: parseJwkSet(json, 'test keys') },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Storage clients

/** An HTTP client that fails every request after the first `requests`, as if the process died there. */
export class KillSwitch implements HttpClient {
  #remaining: number;
  #tripped = false;
  constructor(
    requests: number,
    private readonly inner: HttpClient = createDefaultHttpClient(),
  ) {
    this.#remaining = requests;
  }
  get tripped(): boolean {
    return this.#tripped;
  }
  async sendRequest(request: Parameters<HttpClient['sendRequest']>[0]): ReturnType<HttpClient['sendRequest']> {
    if (this.#tripped) throw new Error('killed');
    if (this.#remaining-- > 0) return this.inner.sendRequest(request);
    this.#tripped = true;
    // Half the time the fatal request still reaches the service (the process dies before reading the answer).
    if (Math.random() < 0.5) await this.inner.sendRequest(request).catch(() => undefined);
    throw new Error('killed');
  }
}

/** An HTTP client that records each request's method and URL (to check how many calls an operation costs). */
export class RecordingHttpClient implements HttpClient {
  readonly requests: string[] = [];
  constructor(private readonly inner: HttpClient = createDefaultHttpClient()) {}
  sendRequest(request: Parameters<HttpClient['sendRequest']>[0]): ReturnType<HttpClient['sendRequest']> {
    this.requests.push(`${request.method} ${new URL(request.url).search}`);
    return this.inner.sendRequest(request);
  }
}

export interface StorageClients {
  readonly blobService: BlobServiceClient;
  readonly tableService: TableServiceClient;
  readonly queueService: QueueServiceClient;
  tableClient(name: string): TableClient;
  readonly progressTable: TableClient;
  readonly jobsQueue: QueueClient;
  readonly poisonQueue: QueueClient;
}

export function storageClients(azurite: RunningAzurite, httpClient?: HttpClient): StorageClients {
  const sharedKey = new StorageSharedKeyCredential(AZURITE_ACCOUNT_NAME, AZURITE_ACCOUNT_KEY);
  const named = new AzureNamedKeyCredential(AZURITE_ACCOUNT_NAME, AZURITE_ACCOUNT_KEY);
  // A killable client must not retry (a dead process does not), and is the pipeline's HTTP client.
  const blobPipeline = newPipeline(sharedKey, httpClient ? { retryOptions: { maxTries: 1 } } : {});
  const queuePipeline = newQueuePipeline(sharedKey, httpClient ? { retryOptions: { maxTries: 1 } } : {});
  if (httpClient) {
    (blobPipeline as unknown as { _coreHttpClient: HttpClient })._coreHttpClient = httpClient;
    (queuePipeline as unknown as { _coreHttpClient: HttpClient })._coreHttpClient = httpClient;
  }
  const tableOptions = {
    allowInsecureConnection: true,
    ...(httpClient ? { httpClient, retryOptions: { maxRetries: 0 } } : {}),
  };
  const blobService = new BlobServiceClient(azurite.blobEndpoint, blobPipeline);
  const queueService = new QueueServiceClient(azurite.queueEndpoint, queuePipeline);
  const tableClient = (name: string): TableClient => new TableClient(azurite.tableEndpoint, name, named, tableOptions);
  return {
    blobService,
    queueService,
    tableService: new TableServiceClient(azurite.tableEndpoint, named, tableOptions),
    tableClient,
    progressTable: tableClient(ROTATIONS_TABLE),
    jobsQueue: queueService.getQueueClient(ROTATION_JOBS_QUEUE),
    poisonQueue: queueService.getQueueClient(ROTATION_JOBS_POISON_QUEUE),
  };
}

/** CSE_CONTAINERS / CSE_TABLES as lists (or '*'). */
export function scopePolicy(containers: '*' | string[], tables: '*' | string[]): ScopePolicy {
  const c = new ContainerPolicy(containers);
  const tableAllowed = (name: string): boolean => tables === '*' || tables.includes(name);
  return {
    isContainerAllowed: (name) => c.isAllowed(name),
    assertContainerAllowed: (name) => c.assertAllowed(name),
    isTableAllowed: tableAllowed,
    assertTableAllowed: (name) => {
      if (!/^[A-Za-z][A-Za-z0-9]{2,62}$/.test(name)) throw new CseError('InvalidName', `bad table name ${name}`);
      if (!tableAllowed(name)) throw new CseError('TableNotAllowed', `table ${name} is not allowed`);
    },
  };
}

export interface DepsOptions {
  readonly keys: TestKeys;
  readonly policy?: ScopePolicy;
  readonly concurrency?: number;
  readonly tuning?: Partial<RotationTuning>;
  readonly httpClient?: HttpClient;
  readonly logs?: string[];
}

export function rotationDeps(azurite: RunningAzurite, options: DepsOptions): RotationDeps {
  const clients = storageClients(azurite, options.httpClient);
  return {
    blobService: clients.blobService,
    tableService: clients.tableService,
    tableClient: clients.tableClient,
    progressTable: clients.progressTable,
    jobsQueue: clients.jobsQueue,
    keys: options.keys.ring,
    policy: options.policy ?? scopePolicy('*', '*'),
    concurrency: options.concurrency ?? 8,
    tuning: { maxAttempts: 8, ...options.tuning },
    log: (level, message) => options.logs?.push(`${level}: ${message}`),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The queue listener

export type Fault =
  /** The worker dies before doing anything: the message comes back after its lease. */
  | { readonly kind: 'killBefore' }
  /** The worker dies after the job finished, before the message was deleted: the job runs again. */
  | { readonly kind: 'killAfter' }
  /** The worker dies after `requests` Storage requests of this job. */
  | { readonly kind: 'killAfterRequests'; readonly requests: number };

export interface PumpOptions {
  readonly deps: (httpClient?: HttpClient) => RotationDeps;
  readonly clients: StorageClients;
  readonly maxDequeueCount?: number;
  readonly concurrency?: number;
  /** Message lease while a job runs (renewed at half-time unless the worker "died"). */
  readonly leaseSeconds?: number;
  readonly fault?: (job: RotationJob, dequeueCount: number) => Fault | undefined;
  /** Called before each job runs (tests delete objects between sweep and work item here). */
  readonly beforeJob?: (job: RotationJob, dequeueCount: number) => Promise<void> | void;
  readonly timeoutMs?: number;
}

export interface PumpStats {
  deliveries: number;
  kills: number;
  failures: number;
  poisoned: number;
  poisonHandled: number;
  byKind: Record<string, number>;
}

/** Runs rotation jobs until both queues are empty and nothing runs. */
export async function pump(options: PumpOptions): Promise<PumpStats> {
  const { clients } = options;
  const maxDequeue = options.maxDequeueCount ?? 5;
  const lease = options.leaseSeconds ?? 2;
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const stats: PumpStats = { deliveries: 0, kills: 0, failures: 0, poisoned: 0, poisonHandled: 0, byKind: {} };
  const healthy = new RotationService(options.deps());
  await clients.jobsQueue.createIfNotExists();
  await clients.poisonQueue.createIfNotExists();
  const inFlight = new Set<Promise<void>>();
  const limit = options.concurrency ?? 8;

  const runOne = async (msg: {
    messageId: string;
    popReceipt: string;
    messageText: string;
    dequeueCount: number;
  }): Promise<void> => {
    if (msg.dequeueCount > maxDequeue) {
      await toPoison(msg.messageId, msg.popReceipt, msg.messageText);
      return;
    }
    const job = decodeJob(Buffer.from(msg.messageText, 'base64').toString('utf8'));
    stats.deliveries++;
    stats.byKind[job.kind] = (stats.byKind[job.kind] ?? 0) + 1;
    await options.beforeJob?.(job, msg.dequeueCount);
    const fault = options.fault?.(job, msg.dequeueCount);
    if (fault?.kind === 'killBefore') {
      stats.kills++;
      return; // nobody renews or deletes: the lease expires
    }
    const kill = fault?.kind === 'killAfterRequests' ? new KillSwitch(fault.requests) : undefined;
    const service = kill ? new RotationService(options.deps(kill)) : healthy;
    let popReceipt = msg.popReceipt;
    let dead = false;
    const renew = setInterval(
      () => {
        if (dead || kill?.tripped) return;
        clients.jobsQueue
          .updateMessage(msg.messageId, popReceipt, undefined, lease)
          .then((r) => {
            if (r.popReceipt) popReceipt = r.popReceipt;
          })
          .catch(() => undefined);
      },
      (lease * 1000) / 2,
    );
    let ok = true;
    try {
      await service.handleJob(JSON.parse(Buffer.from(msg.messageText, 'base64').toString('utf8')));
    } catch {
      ok = false;
    } finally {
      clearInterval(renew);
    }
    if (kill?.tripped || fault?.kind === 'killAfter') {
      dead = true;
      stats.kills++;
      return;
    }
    if (ok) {
      await clients.jobsQueue.deleteMessage(msg.messageId, popReceipt).catch(() => undefined);
      return;
    }
    stats.failures++;
    if (msg.dequeueCount >= maxDequeue) await toPoison(msg.messageId, popReceipt, msg.messageText);
    else await clients.jobsQueue.updateMessage(msg.messageId, popReceipt, undefined, 0).catch(() => undefined);
  };

  const toPoison = async (id: string, popReceipt: string, text: string): Promise<void> => {
    stats.poisoned++;
    await clients.poisonQueue.sendMessage(text);
    await clients.jobsQueue.deleteMessage(id, popReceipt).catch(() => undefined);
  };

  for (;;) {
    if (Date.now() > deadline) throw new Error(`pump timed out: ${JSON.stringify(stats)}`);
    const room = limit - inFlight.size;
    const received =
      room > 0
        ? await clients.jobsQueue.receiveMessages({ numberOfMessages: Math.min(32, room), visibilityTimeout: lease })
        : undefined;
    for (const m of received?.receivedMessageItems ?? []) {
      const p = runOne(m).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if ((received?.receivedMessageItems.length ?? 0) > 0) continue;
    if (inFlight.size > 0) {
      await Promise.race(inFlight);
      continue;
    }
    const poison = await clients.poisonQueue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: lease });
    for (const m of poison.receivedMessageItems) {
      try {
        await healthy.handlePoison(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')));
        stats.poisonHandled++;
        await clients.poisonQueue.deleteMessage(m.messageId, m.popReceipt);
      } catch {
        // left for another try after its lease
      }
    }
    if (poison.receivedMessageItems.length > 0) continue;
    const [jobs, poisoned] = await Promise.all([
      clients.jobsQueue.getProperties(),
      clients.poisonQueue.getProperties(),
    ]);
    if ((jobs.approximateMessagesCount ?? 0) === 0 && (poisoned.approximateMessagesCount ?? 0) === 0) return stats;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Data

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function putEncryptedBlob(
  container: ContainerClient,
  name: string,
  plaintext: Buffer,
  kek: KeyEncryptionKey,
  options: {
    metadata?: Record<string, string>;
    contentType?: string;
    cacheControl?: string;
    contentDisposition?: string;
    contentLanguage?: string;
    contentEncoding?: string;
  } = {},
): Promise<void> {
  const { metadataValue, ciphertext } = await encryptBlob(kek, plaintext);
  await container.getBlockBlobClient(name).upload(ciphertext, ciphertext.length, {
    metadata: { ...options.metadata, encryptiondata: metadataValue },
    blobHTTPHeaders: {
      ...(options.contentType ? { blobContentType: options.contentType } : {}),
      ...(options.cacheControl ? { blobCacheControl: options.cacheControl } : {}),
      ...(options.contentDisposition ? { blobContentDisposition: options.contentDisposition } : {}),
      ...(options.contentLanguage ? { blobContentLanguage: options.contentLanguage } : {}),
      ...(options.contentEncoding ? { blobContentEncoding: options.contentEncoding } : {}),
    },
  });
}

/** Uploads a golden vector (written by the Python SDK) as it is stored: ciphertext and metadata. */
export async function putVectorBlob(container: ContainerClient, name: string, vectorId: string): Promise<Buffer> {
  const ciphertext = readFileSync(vectorPath('blob', `${vectorId}.bin`));
  const encryptiondata = readFileSync(vectorPath('blob', `${vectorId}.encryptiondata.json`), 'utf8');
  await container.getBlockBlobClient(name).upload(ciphertext, ciphertext.length, { metadata: { encryptiondata } });
  return ciphertext;
}

/** Downloads the stored bytes and decrypts them with `ring` alone. */
export async function readBlob(
  container: ContainerClient,
  name: string,
  ring: KeyRing,
): Promise<{ stored: Buffer; plaintext: Buffer; keyId: string; metadata: Record<string, string> }> {
  const blob = container.getBlobClient(name);
  const stored = await blob.downloadToBuffer();
  const properties = await blob.getProperties();
  const value = properties.metadata?.['encryptiondata'];
  if (value === undefined) throw new Error(`${name} has no encryptiondata`);
  const plaintext = await decryptBlob(value, stored, ring.resolver, { allowV1: true });
  const keyId = (JSON.parse(value) as { WrappedContentKey: { KeyId: string } }).WrappedContentKey.KeyId;
  return { stored, plaintext, keyId, metadata: properties.metadata ?? {} };
}

export function entityClient(
  clients: StorageClients,
  table: string,
  keys: { kek: KeyEncryptionKey; ring: KeyRing },
  protocol: '1.0' | '2.0' = '2.0',
): EncryptedTableClient {
  return new EncryptedTableClient(
    clients.tableClient(table),
    { kek: keys.kek, resolver: keys.ring.resolver },
    { protocol, allowV1: true },
  );
}

export function containerName(prefix: string): string {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  validateContainerName(name);
  return name;
}

export function tableName(prefix: string): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/** Runs `fn` over `items` with at most `limit` at once (test data set-up). */
export async function eachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i] as T, i);
      }
    }),
  );
}
