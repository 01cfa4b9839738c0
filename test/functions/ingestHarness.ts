/**
 * What the ingestion tests share: a private Azurite, a key file, the local Functions host (a child process
 * running the real app: functions/{index,blobs,ingest}.js) whose real queue listener triggers `ingest`, and small
 * helpers to drop sources, send messages (base64, as the host expects) and read targets back three ways: raw
 * from Storage, decrypted through GET /api/blobs, and (elsewhere) through the official Python SDK.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import { generateDevelopmentKeySet, loadLocalKeys, type LocalKeyRing } from '../../shared/keys/localKeys';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { contentStream } from '../helpers/blobContent';
import { startLocalHost, type LocalHostOptions, type RunningLocalHost } from '../helpers/localHost';

export const MiB = 1024 * 1024;
export const REGION = 4 * MiB;
export const KEY_ID = 'local:ingest-test';
export const TARGET_CONTAINER = 'encrypted';
export const LANDING = 'landing';

/** host.json for the tests: quick polling, a short retry delay, a small dequeue count. */
export function testHostJson(overrides: Record<string, unknown> = {}): object {
  return {
    version: '2.0',
    extensions: {
      queues: {
        maxPollingInterval: '00:00:00.500',
        visibilityTimeout: '00:00:00',
        batchSize: 8,
        newBatchThreshold: 4,
        maxDequeueCount: 3,
        messageEncoding: 'base64',
        ...overrides,
      },
    },
  };
}

/** The app's compiled files this suite loads (not whatever else is being built beside them). */
export function appMain(): string {
  return join(__dirname, '..', '..', 'functions', '{index,blobs,ingest}.js');
}

export interface IngestEnvironment {
  readonly azurite: RunningAzurite;
  readonly blobs: BlobServiceClient;
  readonly queues: QueueServiceClient;
  readonly keysFile: string;
  readonly keys: LocalKeyRing;
  readonly queueName: string;
  readonly queue: QueueClient;
  readonly settings: Record<string, string>;
  host: RunningLocalHost;
  /** Starts a (new) host with the suite's settings plus `env`; the previous one must be stopped. */
  startHost(env?: Record<string, string | undefined>, options?: Partial<LocalHostOptions>): Promise<RunningLocalHost>;
  close(): Promise<void>;
}

export async function startIngestEnvironment(
  queueName: string,
  options: { hostJson?: object; settings?: Record<string, string>; leaseSeconds?: number } = {},
): Promise<IngestEnvironment> {
  const azurite = await startAzurite();
  const dir = mkdtempSync(join(tmpdir(), 'cse-ingest-'));
  const keysFile = join(dir, 'keys.json');
  writeFileSync(keysFile, generateDevelopmentKeySet(KEY_ID));
  const keys = await loadLocalKeys(keysFile);
  const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
  const queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
  const queue = queues.getQueueClient(queueName);
  await queue.createIfNotExists();
  await blobs.getContainerClient(LANDING).createIfNotExists();
  const settings: Record<string, string> = {
    CSE_KEY_ID: KEY_ID,
    CSE_LOCAL_KEYS: keysFile,
    CSE_CONTAINERS: '*',
    CSE_INGEST_QUEUE: queueName,
    CSE_INGEST_TARGET_CONTAINER: TARGET_CONTAINER,
    ...options.settings,
  };
  const env: IngestEnvironment = {
    azurite,
    blobs,
    queues,
    keysFile,
    keys,
    queueName,
    queue,
    settings,
    host: undefined as unknown as RunningLocalHost,
    startHost: async (extra = {}, hostOptions = {}) => {
      env.host = await startLocalHost({
        storage: azurite.connectionString,
        main: appMain(),
        hostJson: options.hostJson ?? testHostJson(),
        leaseSeconds: options.leaseSeconds ?? 5,
        env: { ...settings, ...extra },
        ...hostOptions,
      });
      return env.host;
    },
    close: async () => {
      await env.host?.stop();
      await azurite.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

export function container(env: IngestEnvironment, name: string): ContainerClient {
  return env.blobs.getContainerClient(name);
}

/** Uploads generated plaintext content (see test/helpers/blobContent.ts) as a source blob; returns its ETag. */
export async function dropSource(
  env: IngestEnvironment,
  name: string,
  seed: string,
  length: number,
  options: { container?: string; contentType?: string; metadata?: Record<string, string> } = {},
): Promise<string> {
  const client = container(env, options.container ?? LANDING).getBlockBlobClient(name);
  const response = await client.uploadStream(Readable.from(contentStream(seed, length, MiB)), MiB, 2, {
    ...(options.contentType ? { blobHTTPHeaders: { blobContentType: options.contentType } } : {}),
    ...(options.metadata ? { metadata: options.metadata } : {}),
  });
  return response.etag!;
}

/** Sends a message the way producers must for the Functions host: the text base64-encoded. */
export async function sendMessage(env: IngestEnvironment, message: unknown): Promise<string> {
  const text = typeof message === 'string' ? message : JSON.stringify(message);
  const sent = await env.queue.sendMessage(Buffer.from(text, 'utf8').toString('base64'));
  return sent.messageId;
}

/** Waits for the host to log the completion of an ingestion into `target` (`container/name`), logged at `from` or later. */
export function waitForCompletion(
  env: IngestEnvironment,
  target: string,
  options: { from?: number; timeoutMs?: number } = {},
): Promise<string> {
  // The log quotes a name with spaces or quotes as JSON (shared/ingest/ingestReport.ts).
  const token = /[\s"]/.test(target) ? JSON.stringify(target) : target;
  const pattern = new RegExp(`Ingestion completed: .*target=${escapeRegExp(token)} `);
  return env.host.waitForLog(pattern, { timeoutMs: options.timeoutMs ?? 30_000, from: options.from ?? 0 });
}

/** A field of a completion log line (`size=12` -> '12'). */
export function logField(line: string, field: string): string | undefined {
  const m = new RegExp(`\\b${field}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`).exec(line);
  if (!m?.[1]) return undefined;
  return m[1].startsWith('"') ? (JSON.parse(m[1]) as string) : m[1];
}

export async function exists(env: IngestEnvironment, containerName: string, name: string): Promise<boolean> {
  return container(env, containerName).getBlobClient(name).exists();
}

/** GET /api/blobs/{container}/{name} through the host: status, headers, length and SHA-256 of the body. */
export async function getThroughApi(
  env: IngestEnvironment,
  containerName: string,
  name: string,
): Promise<{ status: number; headers: Headers; length: number; sha256: string }> {
  const path = `/api/blobs/${containerName}/${name.split('/').map(encodeURIComponent).join('/')}`;
  const response = await fetch(env.host.url(path));
  const hash = createHash('sha256');
  let length = 0;
  if (response.body) {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      length += chunk.byteLength;
    }
  }
  return { status: response.status, headers: response.headers, length, sha256: hash.digest('hex') };
}

/** Messages in a queue (peeked, not dequeued), decoded from base64. */
export async function peekTexts(env: IngestEnvironment, queueName: string): Promise<string[]> {
  const client = env.queues.getQueueClient(queueName);
  if (!(await client.exists())) return [];
  const peeked = await client.peekMessages({ numberOfMessages: 32 });
  return peeked.peekedMessageItems.map((m) => Buffer.from(m.messageText, 'base64').toString('utf8'));
}

/** Polls `check` every 100 ms until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
