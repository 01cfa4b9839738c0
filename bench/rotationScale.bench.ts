/**
 * Rotation at scale (run by bench/run.ts; alone: `node dist/bench/rotationScale.bench.js` from the project root).
 * Prints the tables docs/SCALE.md is written from:
 *
 *  1. estimates for 10^6 and 10^9 objects from the published limits (Key Vault per key type, storage account
 *     request rate, listing page, instance count), with the limit that binds (bench/rotationScaleModel.ts);
 *  2. the same parameters simulated event by event for 10^5 objects (sweep chains, per-instance key-call slots,
 *     a 10 s sliding-window vault answering 429 + Retry-After, the serialized progress record): the simulated
 *     throughput over the estimated one;
 *  3. a measured small-scale run: a real rotation through the local host against the Key Vault stand-in behind a
 *     proxy that enforces a Key Vault style limit (ROTATION_SCALE_LIMIT unwraps per 10 s, default 300), timed
 *     from POST to completed, beside the simulation and the estimate for the same parameters.
 */
import { estimate, simulate, type ScaleParams } from './rotationScaleModel';
import {
  startAppHost,
  startCountingProxy,
  startTriggerEnv,
  type AppHost,
} from '../test/functions/rotationTriggersHarness';

/** Published limits (learn.microsoft.com key-vault/general/service-limits), calls per 10 s per vault. */
const KEY_TYPES: readonly { name: string; per10s: number; keyCallSeconds: number; callsPerObject: number }[] = [
  { name: 'RSA 2048 software key', per10s: 4000, keyCallSeconds: 0.015, callsPerObject: 1 },
  { name: 'RSA 2048 HSM key', per10s: 2000, keyCallSeconds: 0.02, callsPerObject: 1 },
  { name: 'RSA 3072 software key', per10s: 1000, keyCallSeconds: 0.02, callsPerObject: 1 },
  { name: 'RSA 3072 HSM key', per10s: 500, keyCallSeconds: 0.03, callsPerObject: 1 },
  { name: 'RSA 4096 HSM key', per10s: 250, keyCallSeconds: 0.04, callsPerObject: 1 },
];

/** In-region latencies assumed for Azure (seconds); the bottleneck tables show they rarely matter. */
const AZURE: Omit<ScaleParams, 'objects' | 'vaultOpsPer10s' | 'keyCallSeconds' | 'keyCallsPerObject' | 'vaults'> = {
  units: 8,
  pageSize: 200,
  listPageSeconds: 0.05,
  instances: 4,
  concurrency: 16,
  itemsPerInstance: 24,
  storageSeconds: 0.01,
  storageRequestsPerSecond: 20_000,
  progressTxnSeconds: 0.02,
};

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(0)} min`;
  if (seconds < 2 * 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

function params(keyType: (typeof KEY_TYPES)[number], objects: number, vaults = 1): ScaleParams {
  return {
    ...AZURE,
    objects,
    vaults,
    vaultOpsPer10s: keyType.per10s,
    subscriptionOpsPer10s: 5 * keyType.per10s,
    keyCallSeconds: keyType.keyCallSeconds,
    keyCallsPerObject: keyType.callsPerObject,
  };
}

function estimates(): void {
  console.log('## Rotation at scale: estimates from published limits\n');
  console.log(
    `Model: ${AZURE.instances} instances, CSE_ROTATION_CONCURRENCY ${AZURE.concurrency}, ${AZURE.units} containers, ` +
      `${AZURE.pageSize} objects per work item, storage ${AZURE.storageSeconds * 1000} ms per request, ` +
      `${AZURE.storageRequestsPerSecond} requests/s per account, progress transaction ${AZURE.progressTxnSeconds * 1000} ms; ` +
      `subscription cap 5 × the vault limit. "sim/est" is the simulated throughput (10^5 objects) over the estimate.\n`,
  );
  console.log('| key (one vault unless stated) | objects/s | binding limit | 10^6 objects | 10^9 objects | sim/est |');
  console.log('|---|---:|---|---:|---:|---:|');
  const rows: [string, (objects: number) => ScaleParams][] = KEY_TYPES.map((k) => [k.name, (n) => params(k, n)]);
  const rsa2048 = KEY_TYPES[0] as (typeof KEY_TYPES)[number];
  const hsm3072 = KEY_TYPES[3] as (typeof KEY_TYPES)[number];
  rows.push([`${rsa2048.name}, keys in 5 vaults`, (n) => params(rsa2048, n, 5)]);
  rows.push([`${rsa2048.name}, keys in 10 vaults (subscription cap)`, (n) => params(rsa2048, n, 10)]);
  rows.push([`${hsm3072.name}, keys in 5 vaults`, (n) => params(hsm3072, n, 5)]);
  rows.push([
    'not throttled (e.g. Managed HSM within its capacity), 4 instances',
    (n) => ({ ...params(rsa2048, n), vaultOpsPer10s: 1e9, subscriptionOpsPer10s: undefined }),
  ]);
  rows.push([
    'not throttled, 16 instances',
    (n) => ({ ...params(rsa2048, n), vaultOpsPer10s: 1e9, subscriptionOpsPer10s: undefined, instances: 16 }),
  ]);
  for (const [name, make] of rows) {
    const e6 = estimate(make(1e6));
    const e9 = estimate(make(1e9));
    const sim = simulate(make(1e5));
    const check = sim.objectsPerSecond / estimate(make(1e5)).objectsPerSecond;
    console.log(
      `| ${name} | ${e6.objectsPerSecond.toFixed(0)} | ${e6.bottleneck} | ${duration(e6.seconds)} | ${duration(e9.seconds)} | ${check.toFixed(2)} |`,
    );
  }
  console.log('');
}

async function measured(): Promise<void> {
  const limit = Number(process.env.ROTATION_SCALE_LIMIT ?? 300);
  const perContainer = Number(process.env.ROTATION_SCALE_BLOBS ?? 300);
  const containers = ['scale-a', 'scale-b', 'scale-c'];
  const env = await startTriggerEnv();
  const proxy = await startCountingProxy(env.kv.url, 0, { unwrapsPer10s: limit });
  let h: AppHost | undefined;
  try {
    env.kv.createKey('scale-kek');
    h = await startAppHost(env, {
      CSE_KEY_ID: `${proxy.url}/keys/scale-kek`,
      CSE_CONTAINERS: containers.join(','),
      CSE_TABLES: 'notablesforscale',
      CSE_ROTATION_CONCURRENCY: '16',
    });
    const host = h;
    await Promise.all(
      containers.map(async (c) => {
        for (let i = 0; i < perContainer; i++) await host.put(c, `b${i}`, `${c} ${i}`);
      }),
    );
    const objects = containers.length * perContainer;
    env.kv.rotateKey('scale-kek');
    proxy.reset();
    const t0 = Date.now();
    const res = await fetch(h.host.url('/api/rotations'), { method: 'POST' });
    const { id } = (await res.json()) as { id: string };
    const view = await h.waitFinished(id, 600_000);
    const seconds = (Date.now() - t0) / 1000;
    if (view.status !== 'completed' || view.counts.rewrapped !== objects) {
      throw new Error(`rotation did not complete cleanly: ${JSON.stringify(view).slice(0, 500)}`);
    }
    // The same pipeline with this machine's latencies (roughly: Azurite and the stand-in on loopback).
    const local: ScaleParams = {
      objects,
      units: containers.length,
      pageSize: 200,
      listPageSeconds: 0.02,
      vaultOpsPer10s: limit,
      vaults: 1,
      keyCallsPerObject: 1,
      instances: 1,
      concurrency: 16,
      itemsPerInstance: 24,
      storageSeconds: 0.005,
      keyCallSeconds: 0.005,
      storageRequestsPerSecond: 20_000,
      progressTxnSeconds: 0.01,
    };
    const sim = simulate(local);
    const est = estimate(local);
    console.log('## Rotation at scale: measured small-scale run\n');
    console.log(
      `${objects} blobs in ${containers.length} containers, rotated through the local host against the Key Vault ` +
        `stand-in limited to ${limit} unwraps per 10 s (429 + Retry-After beyond), CSE_ROTATION_CONCURRENCY 16.\n`,
    );
    console.log('| | seconds | objects/s |');
    console.log('|---|---:|---:|');
    console.log(`| measured (POST to completed) | ${seconds.toFixed(1)} | ${(objects / seconds).toFixed(1)} |`);
    console.log(`| simulated, same parameters | ${sim.seconds.toFixed(1)} | ${sim.objectsPerSecond.toFixed(1)} |`);
    console.log(
      `| estimated (steady state ${est.bottleneck}) | ${est.seconds.toFixed(1)} | ${est.objectsPerSecond.toFixed(1)} |`,
    );
    console.log(
      `\nUnwraps admitted ${proxy.unwraps}, answered 429 ${proxy.throttled}; failed objects ${view.counts.failed}. ` +
        `measured / simulated = ${(seconds / sim.seconds).toFixed(2)}.\n`,
    );
  } finally {
    await h?.host.stop();
    await proxy.close();
    await env.stop();
  }
}

async function main(): Promise<void> {
  estimates();
  if (process.env.ROTATION_SCALE_SKIP_MEASURED !== '1') await measured();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
