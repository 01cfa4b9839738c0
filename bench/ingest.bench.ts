/**
 * Ingestion benchmark (run by bench/run.ts; alone: `node dist/bench/ingest.bench.js` from the project root).
 *
 * One private in-memory Azurite, side by side in the same run:
 * 1. Throughput: the ingestion procedure (shared/ingest/ingestion.ts: properties, one ETag-locked GET streamed
 *    through v2.0 encryption into staged blocks, commit with metadata, conditional delete of the source) versus a
 *    plain copy of the same bytes with @azure/storage-blob: one `download()` stream piped into `uploadStream`
 *    (staged blocks, the SDK's defaults). Not a server-side copy: Azurite copies by reference, so that is no
 *    baseline. 16 MiB and 256 MiB, alternating runs, median; ratio = ingestion / plain (target ≥ 0.9).
 * 2. Memory: peak RSS (VmHWM) of the local Functions host process after it ingested one source of 16 MiB,
 *    256 MiB and 1 GiB through its real queue trigger, a fresh host per size (target: flat). The end-to-end time
 *    (message sent to completion logged, queue polling included) is reported alongside.
 * Content is generated on the fly; neither side holds it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { generateDevelopmentKeySet, loadLocalKeys } from '../shared/keys/localKeys';
import { ContainerPolicy } from '../shared/storage/containerPolicy';
import { Ingestion } from '../shared/ingest/ingestion';
import { startAzurite, type RunningAzurite } from '../localhost/azurite';
import { contentStream } from '../test/helpers/blobContent';
import { startLocalHost } from '../test/helpers/localHost';
import { peakRssBytes } from '../test/helpers/processMemory';
import { cpuSeconds } from '../test/helpers/processCpu';

const MiB = 1024 * 1024;
const RUNS: Record<number, number> = { [16 * MiB]: 7, [256 * MiB]: 3 };
const RSS_SIZES = [16 * MiB, 256 * MiB, 1024 * MiB];
const KEY_ID = 'local:bench-ingest';

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const mbps = (bytes: number, seconds: number): number => bytes / 1e6 / seconds;
const fmt = (n: number, digits = 0): string => n.toFixed(digits);

interface Cost {
  /** Wall-clock seconds. */
  readonly wall: number;
  /** CPU seconds (user + system) of this process and of Azurite together. */
  readonly cpu: number;
}

async function measure(azuritePid: number, fn: () => Promise<unknown>): Promise<Cost> {
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const azuriteBefore = cpuSeconds(azuritePid);
  await fn();
  const own = process.cpuUsage(cpuBefore);
  return {
    wall: Number(process.hrtime.bigint() - started) / 1e9,
    cpu: (own.user + own.system) / 1e6 + (cpuSeconds(azuritePid) - azuriteBefore),
  };
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function drop(container: ContainerClient, name: string, size: number): Promise<void> {
  await container.getBlockBlobClient(name).uploadStream(Readable.from(contentStream(name, size, 4 * MiB)), 8 * MiB, 4);
}

/** The baseline: the same bytes downloaded and uploaded again by the plain SDK, streamed. */
async function plainCopy(from: ContainerClient, to: ContainerClient, name: string): Promise<void> {
  const response = await from.getBlobClient(name).download();
  await to.getBlockBlobClient(name).uploadStream(response.readableStreamBody as Readable);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cse-bench-ingest-'));
  let azurite: RunningAzurite | undefined;
  const out: string[] = [];
  try {
    azurite = await startAzurite();
    const keysFile = join(dir, 'keys.json');
    writeFileSync(keysFile, generateDevelopmentKeySet(KEY_ID));
    const keys = await loadLocalKeys(keysFile);
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const landing = service.getContainerClient('landing');
    const encrypted = service.getContainerClient('encrypted');
    const plainTarget = service.getContainerClient('plain-copy');
    for (const c of [landing, encrypted, plainTarget]) await c.createIfNotExists();
    const ingestion = new Ingestion({
      blobService: service,
      containers: new ContainerPolicy('*'),
      activeKey: async () => keys.get(KEY_ID)!,
    });

    out.push('## Ingestion', '');
    out.push(
      'The ingestion procedure against a plain `@azure/storage-blob` copy of the same bytes (one `download()` stream',
      'piped into `uploadStream`, SDK defaults), on one in-memory Azurite in the same run, alternating. Ingestion also',
      'reads properties, encrypts (v2.0), commits with metadata and deletes the source under If-Match. MB/s of',
      'plaintext (10^6 bytes), median of the runs; ratio = ingestion / plain (target ≥ 0.9). Wall-clock throughput',
      'on a shared machine mostly measures the neighbours, so throughput per CPU second (this process and Azurite',
      'together, from /proc) is reported too.',
      '',
      '| size | runs | ingestion MB/s | plain MB/s | ratio | ingestion MB/CPU-s | plain MB/CPU-s | CPU ratio |',
      '|---|---|---|---|---|---|---|---|',
    );

    // 1. Throughput --------------------------------------------------------------------------------------------
    const request = (name: string) =>
      ({
        kind: 'blob',
        form: 'source',
        envelope: false,
        source: { container: 'landing', name },
        target: { container: 'encrypted', name },
        deleteSource: true,
      }) as const;
    for (const size of [16 * MiB, 256 * MiB]) {
      // Warm-up (JIT, connection pool) at this size; not counted.
      await drop(landing, 'warm', size);
      await ingestion.ingest(request('warm'));
      await encrypted.deleteBlob('warm');
      const ingested: Cost[] = [];
      const plain: Cost[] = [];
      for (let i = 0; i < RUNS[size]!; i++) {
        const iName = `ingest-${size}-${i}`;
        const pName = `plain-${size}-${i}`;
        await drop(landing, iName, size);
        await drop(landing, pName, size);
        ingested.push(await measure(azurite.pid, () => ingestion.ingest(request(iName))));
        plain.push(await measure(azurite.pid, () => plainCopy(landing, plainTarget, pName)));
        await encrypted.deleteBlob(iName);
        await plainTarget.deleteBlob(pName);
        await landing.deleteBlob(pName);
      }
      const ing = mbps(size, median(ingested.map((c) => c.wall)));
      const pl = mbps(size, median(plain.map((c) => c.wall)));
      const ingCpu = mbps(size, median(ingested.map((c) => c.cpu)));
      const plCpu = mbps(size, median(plain.map((c) => c.cpu)));
      out.push(
        `| ${size / MiB} MiB | ${ingested.length} | ${fmt(ing)} | ${fmt(pl)} | ${fmt(ing / pl, 2)} | ` +
          `${fmt(ingCpu)} | ${fmt(plCpu)} | ${fmt(ingCpu / plCpu, 2)} |`,
      );
    }
    out.push('');

    // 2. Memory through the real queue trigger, fresh host per size ----------------------------------------------
    out.push(
      'Peak RSS (VmHWM) of the local Functions host after ingesting one source through its queue trigger, a fresh host',
      'per size (target: flat). End-to-end MB/s counts from sending the message to the completion log line, queue',
      'polling included.',
      '',
      '| source | end-to-end MB/s | host peak RSS MiB |',
      '|---|---|---|',
    );
    const queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
    const queue = queues.getQueueClient('ingest-bench');
    await queue.createIfNotExists();
    for (const size of RSS_SIZES) {
      const name = `rss-${size}`;
      await drop(landing, name, size);
      const host = await startLocalHost({
        storage: azurite.connectionString,
        main: join(__dirname, '..', 'functions', '{index,ingest}.js'),
        hostJson: {
          version: '2.0',
          extensions: { queues: { maxPollingInterval: '00:00:00.200', messageEncoding: 'base64' } },
        },
        leaseSeconds: 600,
        env: {
          CSE_KEY_ID: KEY_ID,
          CSE_LOCAL_KEYS: keysFile,
          CSE_INGEST_QUEUE: 'ingest-bench',
          CSE_INGEST_TARGET_CONTAINER: 'encrypted',
        },
      });
      try {
        const from = host.logs.length;
        const elapsed = await seconds(async () => {
          const message = JSON.stringify({ source: { container: 'landing', name } });
          await queue.sendMessage(Buffer.from(message).toString('base64'));
          await host.waitForLog(new RegExp(`Ingestion completed: .*target=encrypted/${name} `), {
            from,
            timeoutMs: 600_000,
          });
        });
        out.push(`| ${size / MiB} MiB | ${fmt(mbps(size, elapsed))} | ${fmt(peakRssBytes(host.pid) / MiB, 1)} |`);
      } finally {
        await host.stop();
      }
      await encrypted.deleteBlob(name);
    }
    console.log(out.join('\n'));
  } finally {
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
