/**
 * Rotations that start themselves, through the local host against the Key Vault stand-in: Azurite, the stand-in
 * (optionally behind a proxy that counts and delays unwraps), the fake managed identity endpoint that gives the
 * app its Key Vault token (AZURE_CLIENT_ID + IDENTITY_ENDPOINT/IDENTITY_HEADER, exactly as in Azure), and hosts
 * started from settings alone: nothing test-specific is injected into the app.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import type { RotationView } from '../../shared/rotation/types';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { KeyVaultStandIn } from '../helpers/keyVaultStandIn';
import { startLocalHost, type RunningLocalHost } from '../helpers/localHost';
import { startManagedIdentityEndpoint } from '../helpers/managedIdentityEndpoint';
import { defaultHostJson } from './rotationsHarness';

export const CLIENT_ID = '5a3c1d2e-7f60-4b8a-9c1d-2e3f4a5b6c7d';

export interface TriggerEnv {
  readonly azurite: RunningAzurite;
  readonly kv: KeyVaultStandIn;
  readonly blobs: BlobServiceClient;
  readonly queues: QueueServiceClient;
  stop(): Promise<void>;
}

export async function startTriggerEnv(): Promise<TriggerEnv> {
  const azurite = await startAzurite();
  const kv = await KeyVaultStandIn.start({ acceptToken: (t) => t === 'fake-managed-identity-token' });
  // Sets IDENTITY_ENDPOINT / IDENTITY_HEADER in this process; hosts inherit them (like the platform sets them).
  const mi = await startManagedIdentityEndpoint();
  return {
    azurite,
    kv,
    blobs: BlobServiceClient.fromConnectionString(azurite.connectionString),
    queues: QueueServiceClient.fromConnectionString(azurite.connectionString),
    stop: async () => {
      await mi.close();
      await kv.close();
      await azurite.stop();
    },
  };
}

export interface AppHost {
  readonly host: RunningLocalHost;
  put(container: string, name: string, body: string): Promise<void>;
  get(path: string): Promise<Response>;
  rotations(): Promise<RotationView[]>;
  rotation(id: string): Promise<RotationView>;
  waitFinished(id: string, timeoutMs?: number): Promise<RotationView>;
  /** Logs from index `from` on matching `pattern` (waits up to `timeoutMs`). */
  waitForLog(pattern: RegExp, from?: number, timeoutMs?: number): Promise<string>;
}

export async function startAppHost(
  env: TriggerEnv,
  settings: Record<string, string>,
  options: { maxDequeueCount?: number } = {},
): Promise<AppHost> {
  const hostJson = defaultHostJson() as { extensions: { queues: Record<string, unknown> } };
  if (options.maxDequeueCount !== undefined) hostJson.extensions.queues['maxDequeueCount'] = options.maxDequeueCount;
  const host = await startLocalHost({
    storage: env.azurite.connectionString,
    hostJson,
    leaseSeconds: 5,
    shutdownSeconds: 1,
    env: {
      AZURE_CLIENT_ID: CLIENT_ID,
      CSE_ALLOW_V1: 'true',
      // The ingestion target must be an allowed container.
      ...(settings['CSE_CONTAINERS'] ? { CSE_INGEST_TARGET_CONTAINER: settings['CSE_CONTAINERS'].split(',')[0] } : {}),
      ...settings,
    },
  });
  const get = (path: string): Promise<Response> => fetch(host.url(path));
  const rotation = async (id: string): Promise<RotationView> => {
    const res = await get(`/api/rotations/${id}`);
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as RotationView;
  };
  return {
    host,
    get,
    put: async (container, name, body) => {
      const res = await fetch(host.url(`/api/blobs/${container}/${name}`), {
        method: 'PUT',
        headers: { 'content-type': 'text/plain' },
        body,
      });
      assert.ok(res.status === 201 || res.status === 200, `PUT ${name}: ${res.status} ${await res.text()}`);
    },
    rotations: async () => {
      const res = await get('/api/rotations');
      assert.equal(res.status, 200);
      return ((await res.json()) as { rotations: RotationView[] }).rotations;
    },
    rotation,
    waitFinished: async (id, timeoutMs = 120_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const view = await rotation(id);
        if (view.status !== 'running') return view;
        if (Date.now() > deadline) {
          throw new Error(`rotation still running: ${JSON.stringify(view)}\n${host.logs.slice(-40).join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    waitForLog: (pattern, from = 0, timeoutMs = 30_000) => host.waitForLog(pattern, { from, timeoutMs }),
  };
}

/** The key id stored in each blob of a container (by listing), by blob name. */
export async function storedKeyIds(blobs: BlobServiceClient, container: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const item of blobs.getContainerClient(container).listBlobsFlat({ includeMetadata: true })) {
    const data = item.metadata?.['encryptiondata'];
    if (data !== undefined) {
      out.set(item.name, (JSON.parse(data) as { WrappedContentKey: { KeyId: string } }).WrappedContentKey.KeyId);
    }
  }
  return out;
}

/** An Event Grid KeyNewVersionCreated event as the vault's system topic publishes it. */
export function keyNewVersionEvent(versionedId: string, type = 'Microsoft.KeyVault.KeyNewVersionCreated'): object {
  const match = /\/keys\/([^/]+)\/([^/]+)$/.exec(versionedId);
  // The vault name is the first label of a real vault's host; a loopback stand-in has none (any name will do).
  const host = new URL(versionedId).hostname;
  const vaultName = /^[\d.]+$/.test(host) ? 'standin' : host.split('.')[0];
  return {
    id: `evt-${Math.random().toString(16).slice(2)}`,
    topic: `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/${vaultName}`,
    subject: match?.[1],
    eventType: type,
    eventTime: new Date().toISOString(),
    data: {
      Id: versionedId,
      VaultName: vaultName,
      ObjectType: 'Key',
      ObjectName: match?.[1],
      Version: match?.[2],
      NBF: null,
      EXP: null,
    },
    dataVersion: '1',
    metadataVersion: '1',
  };
}

/** Sends a message to key-events as Event Grid does: base64 of the JSON. */
export async function sendKeyEvent(queues: QueueServiceClient, event: unknown): Promise<void> {
  const queue = queues.getQueueClient('key-events');
  await queue.createIfNotExists();
  const text = typeof event === 'string' ? event : JSON.stringify(event);
  await queue.sendMessage(Buffer.from(text, 'utf8').toString('base64'));
}

/**
 * A loopback proxy in front of the stand-in that delays each unwrap a little and records how many were in
 * flight at once (the bound CSE_ROTATION_CONCURRENCY promises per worker process). With `unwrapsPer10s` it also
 * enforces a Key Vault style limit on unwraps: at most that many admitted in any 10 s window, beyond which it
 * answers 429 Throttled with `Retry-After` (whole seconds until the window has room), as Key Vault does.
 */
export interface CountingProxy {
  readonly url: string;
  readonly host: string;
  peakUnwraps: number;
  unwraps: number;
  /** Unwraps answered 429 by the proxy's own limit. */
  readonly throttled: number;
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(
  target: string,
  delayMs: number,
  options: { unwrapsPer10s?: number } = {},
): Promise<CountingProxy> {
  const upstream = new URL(target);
  let inFlight = 0;
  const state = { peakUnwraps: 0, unwraps: 0, throttled: 0 };
  const admitted: number[] = [];
  const server: Server = createServer((req, res) => {
    const isUnwrap = /\/unwrapkey(\?|$)/i.test(req.url ?? '') && req.headers.authorization !== undefined;
    if (isUnwrap && options.unwrapsPer10s !== undefined) {
      const now = Date.now();
      while (admitted.length > 0 && (admitted[0] as number) <= now - 10_000) admitted.shift();
      if (admitted.length >= options.unwrapsPer10s) {
        state.throttled++;
        const retryAfter = Math.max(1, Math.ceil(((admitted[0] as number) + 10_000 - now) / 1000));
        req.resume();
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(retryAfter) });
        res.end(
          JSON.stringify({
            error: { code: 'Throttled', message: 'Request was not processed because too many requests were received.' },
          }),
        );
        return;
      }
      admitted.push(now);
    }
    if (isUnwrap) {
      state.unwraps++;
      state.peakUnwraps = Math.max(state.peakUnwraps, ++inFlight);
    }
    const done = (): void => {
      if (isUnwrap) inFlight--;
    };
    const forward = (): void => {
      const out = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          answer.on('end', done);
        },
      );
      out.on('error', () => {
        done();
        res.destroy();
      });
      req.pipe(out);
    };
    if (isUnwrap) setTimeout(forward, delayMs);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    get peakUnwraps() {
      return state.peakUnwraps;
    },
    set peakUnwraps(v: number) {
      state.peakUnwraps = v;
    },
    get unwraps() {
      return state.unwraps;
    },
    get throttled() {
      return state.throttled;
    },
    set unwraps(v: number) {
      state.unwraps = v;
    },
    reset: () => {
      state.peakUnwraps = 0;
      state.unwraps = 0;
      state.throttled = 0;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
