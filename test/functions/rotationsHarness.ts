/**
 * Key rotation through the local Functions host: Azurite, a JWK Set with keys A and B (the host's CSE_KEY_ID is
 * B, so B is the default rotation target and what new uploads use), the host (restartable: it can be killed and
 * started again on the same storage), and small helpers for the HTTP API and the Python interop script.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import type { RotationView } from '../../shared/rotation/types';
import { decodeJob } from '../../shared/rotation/jobMessages';
import type { RotationService } from '../../shared/rotation/rotationService';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { startLocalHost, type LocalHostOptions, type RunningLocalHost } from '../helpers/localHost';
import { projectRoot } from '../helpers/paths';
import { KEY_B, storageClients, testKeys, type StorageClients, type TestKeys } from '../shared/rotation/harness';

const run = promisify(execFile);

export interface RotationHostOptions {
  /** Extra settings for the host (CSE_CONTAINERS, CSE_ALLOWED_KEY_VAULTS, ...). */
  readonly env?: Record<string, string | undefined>;
  /** host.json (default: the project's, with a queue retry delay of 0 so retries do not wait). */
  readonly hostJson?: object;
  readonly leaseSeconds?: number;
}

export interface RotationHost {
  readonly azurite: RunningAzurite;
  readonly keys: TestKeys;
  readonly clients: StorageClients;
  /** JWK Set files: all keys (what the host reads), and B alone (what must suffice after a rotation). */
  readonly allKeysFile: string;
  readonly onlyBFile: string;
  host(): RunningLocalHost;
  url(path: string): string;
  /** Starts (or starts again, after a kill) the host on the same storage. */
  startHost(): Promise<RunningLocalHost>;
  killHost(): Promise<void>;
  post(body?: unknown): Promise<Response>;
  get(id: string): Promise<RotationView>;
  /** Polls GET until the rotation is no longer running. */
  waitFinished(id: string, timeoutMs?: number): Promise<RotationView>;
  stop(): Promise<void>;
}

export function defaultHostJson(): object {
  return {
    version: '2.0',
    extensions: {
      queues: {
        maxPollingInterval: '00:00:01',
        visibilityTimeout: '00:00:00',
        batchSize: 16,
        newBatchThreshold: 8,
        maxDequeueCount: 5,
        messageEncoding: 'base64',
      },
    },
  };
}

export async function startRotationHost(options: RotationHostOptions = {}): Promise<RotationHost> {
  const azurite = await startAzurite();
  const dir = mkdtempSync(join(tmpdir(), 'rotation-keys-'));
  const root = mkdtempSync(join(tmpdir(), 'rotation-host-'));
  let current: RunningLocalHost | undefined;
  try {
    const keys = await testKeys();
    const allKeysFile = join(dir, 'all.jwks.json');
    const onlyBFile = join(dir, 'only-b.jwks.json');
    writeFileSync(allKeysFile, keys.allJson, { mode: 0o600 });
    writeFileSync(onlyBFile, keys.onlyBJson, { mode: 0o600 });
    const hostOptions: LocalHostOptions = {
      storage: azurite.connectionString,
      root,
      hostJson: options.hostJson ?? defaultHostJson(),
      leaseSeconds: options.leaseSeconds ?? 3,
      shutdownSeconds: 1,
      env: {
        CSE_LOCAL_KEYS: allKeysFile,
        CSE_KEY_ID: KEY_B,
        CSE_ALLOW_V1: 'true',
        CSE_ROTATION_CONCURRENCY: '16',
        ...options.env,
      },
    };
    const startHost = async (): Promise<RunningLocalHost> => {
      current = await startLocalHost(hostOptions);
      return current;
    };
    await startHost();
    const host = (): RunningLocalHost => {
      if (current === undefined) throw new Error('host not running');
      return current;
    };
    const url = (path: string): string => host().url(path);
    const get = async (id: string): Promise<RotationView> => {
      const res = await fetch(url(`/api/rotations/${id}`));
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()) as RotationView;
    };
    return {
      azurite,
      keys,
      clients: storageClients(azurite),
      allKeysFile,
      onlyBFile,
      host,
      url,
      startHost,
      killHost: async () => {
        await current?.kill();
        current = undefined;
      },
      post: (body?: unknown) =>
        fetch(url('/api/rotations'), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        }),
      get,
      waitFinished: async (id, timeoutMs = 120_000) => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const view = await get(id);
          if (view.status !== 'running') return view;
          if (Date.now() > deadline)
            throw new Error(`rotation still running: ${JSON.stringify(view)}\n${host().logs.slice(-40).join('\n')}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      },
      stop: async () => {
        await current?.stop();
        await azurite.stop();
        rmSync(dir, { recursive: true, force: true });
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await current?.kill();
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The official Python SDK (test/interop/rotation_blobs.py)

export interface PythonWritten {
  readonly name: string;
  readonly sha256: string;
  readonly length: number;
  readonly protocol: '1.0' | '2.0';
  readonly metadata: Record<string, string>;
  readonly content_type: string | null;
}

export interface PythonRead {
  readonly blobs: Record<
    string,
    {
      sha256: string;
      length: number;
      metadata: Record<string, string>;
      content_type: string | null;
      content_language: string | null;
    }
  >;
  readonly errors: Record<string, string>;
}

function script(): string {
  return join(projectRoot(), 'test', 'interop', 'rotation_blobs.py');
}

export async function pythonWrite(
  connectionString: string,
  container: string,
  jwks: string,
  kid: string,
  options: { count: number; prefix: string; v1Every?: number },
): Promise<PythonWritten[]> {
  const args = [script(), 'write', '--conn', connectionString, '--container', container, '--jwks', jwks, '--kid', kid];
  args.push('--count', String(options.count), '--prefix', options.prefix, '--v1-every', String(options.v1Every ?? 0));
  const { stdout } = await run('/usr/bin/python3', args, { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
  return (JSON.parse(stdout) as { blobs: PythonWritten[] }).blobs;
}

export async function pythonRead(
  connectionString: string,
  container: string,
  jwks: string,
  kid: string,
  names: readonly string[],
): Promise<PythonRead> {
  const dir = mkdtempSync(join(tmpdir(), 'rotation-py-'));
  try {
    const namesFile = join(dir, 'names.json');
    writeFileSync(namesFile, JSON.stringify(names));
    const args = [
      script(),
      'read',
      '--conn',
      connectionString,
      '--container',
      container,
      '--jwks',
      jwks,
      '--kid',
      kid,
      '--names',
      namesFile,
    ];
    const { stdout } = await run('/usr/bin/python3', args, { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
    return JSON.parse(stdout) as PythonRead;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Running the sweep without the host's workers

/**
 * Runs the start and sweep steps of the rotations queued so far in this process (the host must be stopped), and
 * returns the page messages they queued, removed from the queue: the caller sends them back (after changing
 * something between sweep and work item, or twice to redeliver them) for the host's workers to run.
 */
export async function sweepOnly(service: RotationService, clients: StorageClients): Promise<string[]> {
  const pages: string[] = [];
  for (let idle = 0; idle < 3;) {
    const received = await clients.jobsQueue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30 });
    if (received.receivedMessageItems.length === 0) {
      idle++;
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    idle = 0;
    for (const m of received.receivedMessageItems) {
      const job = decodeJob(Buffer.from(m.messageText, 'base64').toString('utf8'));
      if (job.kind === 'page') pages.push(m.messageText);
      else await service.handleJob(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')));
      await clients.jobsQueue.deleteMessage(m.messageId, m.popReceipt);
    }
  }
  return pages;
}
