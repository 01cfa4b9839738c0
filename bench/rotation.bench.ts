/**
 * Key rotation benchmark (run by bench/run.ts; alone: `node dist/bench/rotation.bench.js` from the project root).
 *
 * One private in-memory Azurite holding 10,000 small encrypted blobs, side by side in the same run:
 * - raw: what a re-wrap costs in Storage at the least, a Get Blob Properties + Set Blob Metadata (If-Match) pair
 *   per blob with the plain @azure/storage-blob client, CSE_ROTATION_CONCURRENCY (16) pairs at a time;
 * - rotation: a whole rotation of the same blobs by the engine (shared/rotation: start, sweep with listing and
 *   stored work items, queue messages, per-page re-wraps with the same concurrency, transactional progress
 *   records), its jobs run one at a time from the `rotation-jobs` queue, so at most 16 re-wraps are in flight, as
 *   in the raw runs; timed from the start request until the rotation reports completed.
 * Runs alternate (raw, rotation A->B, raw, rotation B->A, ...); medians; ratio = rotation / raw (target >= 0.8).
 * Then, for information, one rotation end to end through the local Functions host (its queue listener runs up
 * to 16 work items at once, each with 16 re-wraps; queue polling included).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuUsage } from 'node:process';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { encryptBlob } from '../shared/crypto/blobEncryption';
import { RotationService } from '../shared/rotation/rotationService';
import { startAzurite, type RunningAzurite } from '../localhost/azurite';
import { startLocalHost } from '../test/helpers/localHost';
import {
  KEY_A,
  KEY_B,
  eachLimit,
  pump,
  rotationDeps,
  storageClients,
  testKeys,
  type TestKeys,
} from '../test/shared/rotation/harness';
import { cpuSeconds } from '../test/helpers/processCpu';

const BLOBS = Number(process.env.ROTATION_BENCH_BLOBS ?? 10_000);
const CONCURRENCY = 16;
const RUNS = 3;
const CONTAINER = 'bench';

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

interface Timing {
  readonly seconds: number;
  /** CPU of this process plus the other processes named (Azurite, the host): the work done, whatever the load. */
  readonly cpuSeconds: number;
}

async function timed(pids: readonly number[], fn: () => Promise<unknown>): Promise<Timing> {
  const cpu = cpuUsage();
  const others = pids.map((pid) => cpuSeconds(pid));
  const started = process.hrtime.bigint();
  await fn();
  const used = cpuUsage(cpu);
  const othersUsed = pids.map((pid, i) => cpuSeconds(pid) - (others[i] ?? 0)).reduce((a, b) => a + b, 0);
  return {
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    cpuSeconds: (used.user + used.system) / 1e6 + othersUsed,
  };
}

async function populate(container: ContainerClient, keys: TestKeys): Promise<string[]> {
  const names = Array.from({ length: BLOBS }, (_, i) => `b/${String(i).padStart(5, '0')}`);
  await container.createIfNotExists();
  await eachLimit(names, 32, async (name) => {
    const { metadataValue, ciphertext } = await encryptBlob(keys.a, randomBytes(1024));
    await container.getBlockBlobClient(name).upload(ciphertext, ciphertext.length, {
      metadata: { encryptiondata: metadataValue, Owner: 'bench', tag: 'x' },
    });
  });
  return names;
}

/** The baseline: Get Properties + Set Metadata (If-Match) per blob, `CONCURRENCY` at a time. */
async function rawPairs(container: ContainerClient, names: string[]): Promise<void> {
  await eachLimit(names, CONCURRENCY, async (name) => {
    const blob = container.getBlobClient(name);
    const properties = await blob.getProperties();
    await blob.setMetadata(properties.metadata, { conditions: { ifMatch: properties.etag } });
  });
}

async function main(): Promise<void> {
  const azurite: RunningAzurite = await startAzurite();
  try {
    const keys = await testKeys();
    const clients = storageClients(azurite);
    const plain = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER);
    const setup = await timed([azurite.pid], async () =>
      populate(clients.blobService.getContainerClient(CONTAINER), keys),
    );
    const names: string[] = [];
    for await (const b of plain.listBlobsFlat()) names.push(b.name);

    const deps = (httpClient?: HttpClient) =>
      rotationDeps(azurite, { keys, concurrency: CONCURRENCY, ...(httpClient ? { httpClient } : {}) });
    const service = new RotationService(deps());
    const raw: number[] = [];
    const rotation: number[] = [];
    const rotationCpu: number[] = [];
    const rawCpu: number[] = [];
    let target = KEY_B;
    for (let run = 0; run < RUNS; run++) {
      const r = await timed([azurite.pid], () => rawPairs(plain, names));
      raw.push(BLOBS / r.seconds);
      rawCpu.push(BLOBS / r.cpuSeconds);
      let rewrapped = 0;
      const t = await timed([azurite.pid], async () => {
        const { id } = await service.start({ containers: [CONTAINER], tables: [], targetKeyId: target });
        await pump({ deps, clients, concurrency: 1, timeoutMs: 3_600_000 });
        const view = await service.get(id);
        if (view.status !== 'completed' || view.counts.rewrapped !== BLOBS) {
          throw new Error(`rotation did not re-wrap every blob: ${JSON.stringify(view)}`);
        }
        rewrapped = view.counts.rewrapped;
      });
      rotation.push(rewrapped / t.seconds);
      rotationCpu.push(rewrapped / t.cpuSeconds);
      target = target === KEY_B ? KEY_A : KEY_B;
    }

    // Informational: end to end through the local host (default batch settings, CSE_ROTATION_CONCURRENCY 16).
    const dir = mkdtempSync(join(tmpdir(), 'rotation-bench-'));
    let hostRate = 0;
    let hostCpuRate = 0;
    try {
      const keysFile = join(dir, 'keys.json');
      writeFileSync(keysFile, keys.allJson, { mode: 0o600 });
      const host = await startLocalHost({
        storage: azurite.connectionString,
        env: { CSE_LOCAL_KEYS: keysFile, CSE_KEY_ID: target, CSE_ROTATION_CONCURRENCY: String(CONCURRENCY) },
      });
      try {
        const before = [azurite.pid, host.pid].map((pid) => cpuSeconds(pid));
        const started = Date.now();
        const res = await fetch(host.url('/api/rotations'), {
          method: 'POST',
          body: JSON.stringify({ containers: [CONTAINER] }),
        });
        const { id } = (await res.json()) as { id: string };
        for (;;) {
          const view = (await (await fetch(host.url(`/api/rotations/${id}`))).json()) as {
            status: string;
            counts: { rewrapped: number };
          };
          if (view.status !== 'running') {
            if (view.status !== 'completed' || view.counts.rewrapped !== BLOBS) throw new Error(JSON.stringify(view));
            hostRate = BLOBS / ((Date.now() - started) / 1000);
            const cpu = [azurite.pid, host.pid].map((pid, i) => cpuSeconds(pid) - (before[i] ?? 0));
            hostCpuRate = BLOBS / cpu.reduce((a, b) => a + b, 0);
            break;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await host.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    const rawRate = median(raw);
    const rotRate = median(rotation);
    const rawPerCpu = median(rawCpu);
    const rotPerCpu = median(rotationCpu);
    console.log('## Rotation\n');
    console.log(
      `${BLOBS.toLocaleString('en')} blobs of 1 KiB (encrypted, with user metadata) in one in-memory Azurite, ` +
        `${CONCURRENCY} operations in flight on both sides; ${RUNS} alternating runs each, medians ` +
        `(set-up: ${(BLOBS / setup.seconds).toFixed(0)} uploads/s). "Per CPU second" divides by the CPU time of ` +
        'the benchmark process and Azurite together (the host too, in its row), which does not depend on how ' +
        'busy the shared machine is.\n',
    );
    console.log('| measurement | per second (wall clock) | per CPU second |');
    console.log('|---|---:|---:|');
    console.log(`| raw Get Properties + Set Metadata pairs | ${rawRate.toFixed(0)} | ${rawPerCpu.toFixed(0)} |`);
    console.log(`| rotation re-wraps (engine, whole rotation) | ${rotRate.toFixed(0)} | ${rotPerCpu.toFixed(0)} |`);
    console.log(
      `| rotation / raw | **${(rotRate / rawRate).toFixed(2)}** | **${(rotPerCpu / rawPerCpu).toFixed(2)}** |`,
    );
    console.log(
      `| re-wraps end to end through the local host (informational; up to 16 work items at once) | ${hostRate.toFixed(0)} | ${hostCpuRate.toFixed(0)} |`,
    );
    console.log(
      `\nTarget: rotation at 0.8× the raw pair rate or better. Runs (wall clock): raw ${raw.map((x) => x.toFixed(0)).join(', ')}; ` +
        `rotation ${rotation.map((x) => x.toFixed(0)).join(', ')}.`,
    );
  } finally {
    await azurite.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
