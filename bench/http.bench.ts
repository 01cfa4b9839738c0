/**
 * HTTP benchmark (run by bench/run.ts; alone: `node dist/bench/http.bench.js` from the project root).
 *
 * Everything runs in one process tree on one private Azurite (on disk), side by side, alternating:
 * 1. Throughput: PUT and GET of 16 MiB and 256 MiB through the local host (encrypting / decrypting) versus the
 *    plain @azure/storage-blob client on the same bytes without encryption: `uploadStream` (staged blocks, the
 *    SDK's defaults) and one `download()` (a single GET). Median of several runs; ratio host / plain, also as
 *    the median of side-by-side pairs with a 95% confidence interval; the CPU seconds each process used per run. Measured twice: with every process free to use every CPU, then (where
 *    `taskset` is available) with the host on CPUs of its own and Azurite and this client on the others.
 * 2. A 1-byte range GET from a 256 MiB blob through the host versus a plain 4 MiB ranged GET, with the bytes
 *    each one read from storage counted by a small proxy in front of Azurite.
 * 3. Peak RSS (VmHWM) of the host process for a PUT + GET of 16 MiB, 256 MiB and 1 GiB, each in a fresh host.
 * Content is generated on the fly and digested on arrival; neither side holds it.
 */
import { fork } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobServiceClient } from '@azure/storage-blob';
import { generateDevelopmentKeySet } from '../shared/keys/localKeys';
import { startAzurite, azuriteConnectionString, type RunningAzurite } from '../localhost/azurite';
import { contentBytes, contentStream, digestStream } from '../test/helpers/blobContent';
import { canPinCpus, cpuSeconds, pinToCpus, splitCpus } from '../test/helpers/processCpu';
import { startTestHost, type TestHost } from '../test/functions/support/host';
import { ApiClient } from '../test/functions/support/httpClient';

const MiB = 1024 * 1024;
const THROUGHPUT_RUNS: Record<number, number> = { [16 * MiB]: 25, [256 * MiB]: 7 };
const RANGE_RUNS = 15;
const RSS_SIZES = [16 * MiB, 256 * MiB, 1024 * MiB];
const CONTAINER = 'bench';

interface Measured {
  seconds: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function timed<T>(fn: () => Promise<T>): Promise<T & Measured> {
  const started = process.hrtime.bigint();
  const result = await fn();
  return { ...result, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

const mbps = (bytes: number, seconds: number): number => bytes / 1e6 / seconds;
const fmt = (n: number, digits = 0): string => n.toFixed(digits);

/**
 * A pass-through proxy in front of Azurite's blob endpoint that counts the response bytes of GET requests: what
 * a reader really fetched from storage.
 */
async function startCountingProxy(
  target: string,
): Promise<{ url: string; getBytes: () => number; reset: () => void; close: () => Promise<void> }> {
  const targetUrl = new URL(target);
  let getBytes = 0;
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (req.method === 'GET') up.on('data', (chunk: Buffer) => (getBytes += chunk.length));
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    getBytes: () => getBytes,
    reset: () => (getBytes = 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}

async function hostPut(api: ApiClient, name: string, length: number): Promise<Measured> {
  return timed(async () => {
    const r = await api.request('PUT', ApiClient.blobPath(CONTAINER, name), {
      body: contentStream(name, length),
      headers: { 'content-length': length },
    });
    if (r.status !== 201) throw new Error(`PUT ${name}: ${r.status} ${r.body.toString()}`);
    return {};
  });
}

async function hostGet(api: ApiClient, name: string, length: number, range?: string): Promise<Measured> {
  return timed(async () => {
    const r = await api.digest('GET', ApiClient.blobPath(CONTAINER, name), range ? { headers: { range } } : {});
    if (r.status !== (range ? 206 : 200) || (!range && r.length !== length)) {
      throw new Error(`GET ${name}: ${r.status}, ${r.length} bytes`);
    }
    return {};
  });
}

async function plainPut(service: BlobServiceClient, name: string, length: number): Promise<Measured> {
  return timed(async () => {
    await service
      .getContainerClient(CONTAINER)
      .getBlockBlobClient(name)
      .uploadStream(Readable.from(contentStream(name, length)));
    return {};
  });
}

async function plainGet(
  service: BlobServiceClient,
  name: string,
  length: number,
  offset = 0,
  count?: number,
): Promise<Measured> {
  return timed(async () => {
    const response = await service.getContainerClient(CONTAINER).getBlobClient(name).download(offset, count);
    const got = await digestStream(response.readableStreamBody as AsyncIterable<Buffer>);
    if (got.length !== (count ?? length)) throw new Error(`plain GET ${name}: ${got.length} bytes`);
    return {};
  });
}

async function withHost<T>(
  settings: Record<string, string>,
  fn: (host: TestHost, api: ApiClient) => Promise<T>,
): Promise<T> {
  const host = await startTestHost(settings);
  try {
    return await fn(host, new ApiClient(host.url));
  } finally {
    await host.stop();
  }
}

interface CpuSplit {
  readonly host: number;
  readonly azurite: number;
  readonly client: number;
}

/** Runs `fn` and reports the CPU seconds each process of the run used meanwhile. */
async function withCpu(
  pids: { host: number; azurite: number },
  fn: () => Promise<Measured>,
): Promise<Measured & { cpu: CpuSplit }> {
  const before = { host: cpuSeconds(pids.host), azurite: cpuSeconds(pids.azurite), client: cpuSeconds('self') };
  const result = await fn();
  const cpu = {
    host: cpuSeconds(pids.host) - before.host,
    azurite: cpuSeconds(pids.azurite) - before.azurite,
    client: cpuSeconds('self') - before.client,
  };
  return { ...result, cpu };
}

const cpuMedian = (runs: { cpu: CpuSplit }[], key: keyof CpuSplit): number => median(runs.map((r) => r.cpu[key]));

function cpuCell(parts: number[]): string {
  return `${parts.map((n) => n.toFixed(2)).join(' + ')} = ${parts.reduce((a, b) => a + b, 0).toFixed(2)}`;
}

function throughputRow(
  label: string,
  size: number,
  host: (Measured & { cpu: CpuSplit })[],
  plain: (Measured & { cpu: CpuSplit })[],
): string {
  const h = mbps(size, median(host.map((r) => r.seconds)));
  const p = mbps(size, median(plain.map((r) => r.seconds)));
  const paired = pairedRatio(host, plain);
  const pairedCell = `${fmt(paired.median, 2)} (${fmt(paired.low, 2)}–${fmt(paired.high, 2)})`;
  const viaHost = cpuCell([cpuMedian(host, 'host'), cpuMedian(host, 'azurite'), cpuMedian(host, 'client')]);
  const direct = cpuCell([cpuMedian(plain, 'azurite'), cpuMedian(plain, 'client')]);
  return `| ${label} | ${size / MiB} MiB | ${host.length} | ${fmt(h)} | ${fmt(p)} | ${fmt(h / p, 2)} | ${pairedCell} | ${viaHost} | ${direct} |`;
}

/**
 * The median of the per-pair ratios (each host run against the plain run beside it) with its 95% confidence
 * interval, read off the order statistics (distribution-free: the sign test's interval for a median; for 5 to 7
 * pairs it is the whole range, at 94–98%). A pair shares the machine's state of the moment (Azurite's garbage,
 * other tenants' load), which on these machines moved the plain 16 MiB GET alone between 75 and 380 MB/s; a
 * ratio of medians carries that noise, the interval says how far it reaches.
 */
function pairedRatio(host: Measured[], plain: Measured[]): { median: number; low: number; high: number } {
  const ratios = host.map((h, i) => plain[i]!.seconds / h.seconds).sort((a, b) => a - b);
  const n = ratios.length;
  const k = Math.max(0, Math.floor((n - 1.96 * Math.sqrt(n)) / 2));
  return { median: median(ratios), low: ratios[k]!, high: ratios[n - 1 - k]! };
}

/**
 * Runs made first and left out of the figures: the first operations of a fresh host, Azurite or client ran at
 * half speed or less (code not yet optimised by V8, files not yet in the page cache).
 */
const WARM_UP_RUNS = 2;

function dropWarmUp(...runs: unknown[][]): void {
  for (const list of runs) list.splice(0, WARM_UP_RUNS);
}

/** Time a pause lets Azurite (and the host) finish what the previous operation left, e.g. collect its garbage. */
const SETTLE_MS = 200;

/**
 * Runs the host and the plain operation one after the other, host first or plain first as told. The benchmark
 * alternates the order, so that neither side is always the one that runs right after an upload, when Azurite
 * may still be busy with it; and each operation starts after a short pause, so that it does not inherit the
 * previous one's leftover work (garbage collection, deferred writes).
 */
async function inTurn<T>(
  hostFirst: boolean,
  into: { host: T[]; plain: T[] },
  run: { host: () => Promise<T>; plain: () => Promise<T> },
): Promise<void> {
  for (const side of hostFirst ? (['host', 'plain'] as const) : (['plain', 'host'] as const)) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    into[side].push(await run[side]());
  }
}

/**
 * PUT and GET through a fresh host versus the plain client, alternating, then the host relaying a blob it does
 * not decrypt (plaintext reads on), then the plain client through a bare pass-through proxy process: one markdown
 * row per operation and size. `place` runs on each host's (and the proxy's) pid first.
 */
async function measureThroughput(
  service: BlobServiceClient,
  azurite: RunningAzurite,
  settings: Record<string, string>,
  place: (pid: number) => void = () => undefined,
): Promise<string[]> {
  const rows: string[] = [];
  const container = service.getContainerClient(CONTAINER);
  await withHost(settings, async (host, api) => {
    place(host.pid);
    const pids = { host: host.pid, azurite: azurite.pid };
    for (const size of [16 * MiB, 256 * MiB]) {
      const put = { host: [] as (Measured & { cpu: CpuSplit })[], plain: [] as (Measured & { cpu: CpuSplit })[] };
      const get = { host: [] as (Measured & { cpu: CpuSplit })[], plain: [] as (Measured & { cpu: CpuSplit })[] };
      for (let i = 0; i < WARM_UP_RUNS + THROUGHPUT_RUNS[size]!; i++) {
        const hName = `tp-host-${size}-${i}`;
        const pName = `tp-plain-${size}-${i}`;
        const hostFirst = i % 2 === 0;
        await inTurn(hostFirst, put, {
          host: () => withCpu(pids, () => hostPut(api, hName, size)),
          plain: () => withCpu(pids, () => plainPut(service, pName, size)),
        });
        await inTurn(hostFirst, get, {
          host: () => withCpu(pids, () => hostGet(api, hName, size)),
          plain: () => withCpu(pids, () => plainGet(service, pName, size)),
        });
        await container.deleteBlob(hName);
        await container.deleteBlob(pName);
      }
      dropWarmUp(put.host, put.plain, get.host, get.plain);
      rows.push(throughputRow('PUT', size, put.host, put.plain));
      rows.push(throughputRow('GET', size, get.host, get.plain));
    }
  });
  // The host's HTTP relay alone (no crypto): a blob without encryption data served with plaintext reads on.
  await withHost({ ...settings, CSE_ALLOW_PLAINTEXT_READS: 'true' }, async (host, api) => {
    place(host.pid);
    const pids = { host: host.pid, azurite: azurite.pid };
    const size = 256 * MiB;
    await plainPut(service, 'relay', size);
    const relay: (Measured & { cpu: CpuSplit })[] = [];
    const plain: (Measured & { cpu: CpuSplit })[] = [];
    for (let i = 0; i < WARM_UP_RUNS + THROUGHPUT_RUNS[size]!; i++) {
      await inTurn(
        i % 2 === 0,
        { host: relay, plain },
        {
          host: () => withCpu(pids, () => hostGet(api, 'relay', size)),
          plain: () => withCpu(pids, () => plainGet(service, 'relay', size)),
        },
      );
    }
    dropWarmUp(relay, plain);
    rows.push(throughputRow('GET, unencrypted blob (host relay only)', size, relay, plain));

    // The floor for any relay: the plain client through a bare pass-through proxy in its own process.
    const proxy = await startProxyProcess(azurite.blobEndpoint);
    try {
      place(proxy.pid);
      const viaProxy = BlobServiceClient.fromConnectionString(
        azuriteConnectionString({
          blob: `${proxy.url}/devstoreaccount1`,
          queue: azurite.queueEndpoint,
          table: azurite.tableEndpoint,
        }),
      );
      const proxied: (Measured & { cpu: CpuSplit })[] = [];
      const direct: (Measured & { cpu: CpuSplit })[] = [];
      const proxyPids = { host: proxy.pid, azurite: azurite.pid };
      for (let i = 0; i < WARM_UP_RUNS + THROUGHPUT_RUNS[size]!; i++) {
        await inTurn(
          i % 2 === 0,
          { host: proxied, plain: direct },
          {
            host: () => withCpu(proxyPids, () => plainGet(viaProxy, 'relay', size)),
            plain: () => withCpu(proxyPids, () => plainGet(service, 'relay', size)),
          },
        );
      }
      dropWarmUp(proxied, direct);
      rows.push(
        throughputRow('GET through a bare pass-through proxy process (no host, no crypto)', size, proxied, direct),
      );
    } finally {
      proxy.stop();
    }
    await container.deleteBlob('relay');
  });
  return rows;
}

/** bench/passThroughProxy.ts in a child process, in front of `target`. */
async function startProxyProcess(target: string): Promise<{ url: string; pid: number; stop(): void }> {
  const child = fork(join(__dirname, 'passThroughProxy.js'), [target], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`pass-through proxy exited (${code}) before listening`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.disconnect() };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cse-bench-http-'));
  let azurite: RunningAzurite | undefined;
  const lines: string[] = [];
  const out = (line = ''): void => {
    lines.push(line);
  };
  try {
    // On disk (the page cache, in practice), not in memory: in-memory Azurite spent anywhere from 0.01 to 0.13
    // CPU-s on the same 16 MiB GET, at random, which moved the plain baseline between 75 and 380 MB/s; on disk it
    // spent 0.01-0.04 and served 210-390 MB/s once warm.
    azurite = await startAzurite({ location: join(dir, 'azurite') });
    const keysFile = join(dir, 'keys.json');
    writeFileSync(keysFile, generateDevelopmentKeySet('local:bench'));
    const settings = (connectionString: string): Record<string, string> => ({
      AzureWebJobsStorage: connectionString,
      CSE_KEY_ID: 'local:bench',
      CSE_LOCAL_KEYS: keysFile,
    });
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    await service.getContainerClient(CONTAINER).createIfNotExists();

    out('## HTTP');
    out();
    out(
      'Local host (streaming on) in front of one Azurite (on disk), against the plain `@azure/storage-blob` client on',
    );
    out('the same Azurite in the same run: `uploadStream` (staged blocks, SDK defaults) and one `download()` GET.');
    out('Throughput is plaintext MB/s (10^6 bytes), median of the runs; ratio = host / plain (target ≥ 0.9), as the');
    out('ratio of the medians, and as the median of the ratios of runs made side by side with its 95% confidence');
    out(`interval, after ${WARM_UP_RUNS} warm-up runs that are left out.`);
    out();

    // 1. Throughput, twice: all processes sharing every CPU, then the host on CPUs of its own -------------------
    const cpus = splitCpus();
    const throughputHeader = [
      '| operation | size | runs | host MB/s | plain MB/s | ratio of medians | paired ratio (95% CI) | CPU s per run, via host: host + Azurite + client | CPU s per run, plain: Azurite + client |',
      '|---|---|---|---|---|---|---|---|---|',
    ];
    out('**Shared CPUs**: the host, Azurite and this client all run on every CPU, competing for them.');
    out();
    for (const line of throughputHeader) out(line);
    for (const row of await measureThroughput(service, azurite, settings(azurite.connectionString))) out(row);
    out();
    if (canPinCpus()) {
      out(
        `**Dedicated CPUs**: the host (and the pass-through proxy) pinned to CPU ${cpus.upper}, Azurite and this client to CPU ${cpus.lower} (\`taskset\`), for the host runs and the plain runs alike: the service has compute of its own, as a Function app does in Azure, and the client and Storage get the same share in both.`,
      );
      out();
      for (const line of throughputHeader) out(line);
      pinToCpus(process.pid, cpus.lower);
      pinToCpus(azurite.pid, cpus.lower);
      try {
        const rows = await measureThroughput(service, azurite, settings(azurite.connectionString), (pid) =>
          pinToCpus(pid, cpus.upper),
        );
        for (const row of rows) out(row);
      } finally {
        pinToCpus(process.pid, cpus.all);
        pinToCpus(azurite.pid, cpus.all);
      }
    } else {
      out('**Dedicated CPUs**: skipped (needs Linux `taskset` and at least two CPUs).');
    }
    out();

    // 2. Range read through a counting proxy -------------------------------------------------------------------
    const proxy = await startCountingProxy(azurite.blobEndpoint);
    try {
      const proxied = azuriteConnectionString({
        blob: `${proxy.url}/devstoreaccount1`,
        queue: azurite.queueEndpoint,
        table: azurite.tableEndpoint,
      });
      const proxiedService = BlobServiceClient.fromConnectionString(proxied);
      await withHost(settings(proxied), async (_host, api) => {
        const size = 256 * MiB;
        await hostPut(api, 'range-host', size);
        await plainPut(service, 'range-plain', size);
        const position = 100 * MiB + 12345;
        const hostTimes: number[] = [];
        const plainTimes: number[] = [];
        let hostBytes = 0;
        let plainBytes = 0;
        for (let i = 0; i < RANGE_RUNS; i++) {
          proxy.reset();
          hostTimes.push((await hostGet(api, 'range-host', size, `bytes=${position}-${position}`)).seconds);
          hostBytes = Math.max(hostBytes, proxy.getBytes());
          proxy.reset();
          plainTimes.push((await plainGet(proxiedService, 'range-plain', size, position, 4 * MiB)).seconds);
          plainBytes = Math.max(plainBytes, proxy.getBytes());
        }
        // Correctness of what was timed: the byte served is the byte stored.
        const one = await api.request('GET', ApiClient.blobPath(CONTAINER, 'range-host'), {
          headers: { range: `bytes=${position}-${position}` },
        });
        if (!one.body.equals(contentBytes('range-host', position, 1))) throw new Error('range byte mismatch');
        out(
          `Range read from a 256 MiB blob (median of ${RANGE_RUNS}; stored bytes counted by a proxy in front of Azurite):`,
        );
        out();
        out('| request | latency ms | bytes read from storage |');
        out('|---|---|---|');
        out(
          `| host GET \`Range: bytes=${position}-${position}\` (1 byte, decrypted) | ${fmt(median(hostTimes) * 1000, 1)} | ${hostBytes} |`,
        );
        out(`| plain ranged GET of 4 MiB | ${fmt(median(plainTimes) * 1000, 1)} | ${plainBytes} |`);
        out();
        out(
          `One region is ${4 * MiB + 28} stored bytes (target: the 1-byte GET reads at most that). Ratio host / plain latency: ${fmt(median(hostTimes) / median(plainTimes), 2)}.`,
        );
        out();
      });
    } finally {
      await proxy.close();
    }
    await service.getContainerClient(CONTAINER).deleteBlob('range-host');
    await service.getContainerClient(CONTAINER).deleteBlob('range-plain');

    // 3. Peak RSS per size, fresh host each -------------------------------------------------------------------
    out(
      'Peak RSS (VmHWM) of the host process after one PUT and one GET of the size, a fresh host per size (target < 256 MiB, flat):',
    );
    out();
    out('| size | PUT MB/s | GET MB/s | host peak RSS MiB |');
    out('|---|---|---|---|');
    for (const size of RSS_SIZES) {
      await withHost(settings(azurite!.connectionString), async (host, api) => {
        const name = `rss-${size}`;
        const put = await hostPut(api, name, size);
        const get = await hostGet(api, name, size);
        out(
          `| ${size / MiB} MiB | ${fmt(mbps(size, put.seconds))} | ${fmt(mbps(size, get.seconds))} | ${fmt(host.peakRssBytes() / MiB, 1)} |`,
        );
        await service.getContainerClient(CONTAINER).deleteBlob(name);
      });
    }
    console.log(lines.join('\n'));
  } finally {
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
