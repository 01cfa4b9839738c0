import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT_NAME = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteOptions {
  /**
   * Directory for Azurite's data (created if missing). Omit for in-memory persistence, which is what tests want:
   * nothing on disk, nothing to clean up.
   */
  location?: string;
  /** How long to wait for the three services to listen (default 30 s). */
  startTimeoutMs?: number;
}

export interface RunningAzurite {
  /** A full connection string with explicit endpoints (never `UseDevelopmentStorage=true`: ports are not 10000-2). */
  readonly connectionString: string;
  /** Service endpoints including the account, e.g. `http://127.0.0.1:40033/devstoreaccount1`. */
  readonly blobEndpoint: string;
  readonly queueEndpoint: string;
  readonly tableEndpoint: string;
  readonly ports: { readonly blob: number; readonly queue: number; readonly table: number };
  /** Process id of the Azurite process (it exits by itself if its parent dies). */
  readonly pid: number;
  /** Stops Azurite and waits for its process to exit. Safe to call more than once. */
  stop(): Promise<void>;
}

export class AzuriteStartError extends Error {
  override readonly name = 'AzuriteStartError';
}

/** The connection string for the development account at the given endpoints. */
export function azuriteConnectionString(endpoints: { blob: string; queue: string; table: string }): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT_NAME};AccountKey=${AZURITE_ACCOUNT_KEY};` +
    `BlobEndpoint=${endpoints.blob};QueueEndpoint=${endpoints.queue};TableEndpoint=${endpoints.table};`
  );
}

function azuriteScriptPath(): string {
  try {
    return require.resolve('azurite/dist/src/azurite.js');
  } catch (cause) {
    throw new AzuriteStartError(
      'Azurite is not installed (it is a dev dependency: run `npm install`), and AzureWebJobsStorage is not set.',
      { cause },
    );
  }
}

const LISTENING = /Azurite (Blob|Queue|Table) service is successfully listening at (http:\/\/\S+)/;

/**
 * Starts Azurite (blob, queue, table) on free loopback ports, with telemetry off, and resolves once all three
 * services listen. Azurite runs in a child process that exits when this process exits, however it exits.
 */
export async function startAzurite(options: AzuriteOptions = {}): Promise<RunningAzurite> {
  const script = azuriteScriptPath();
  const args = [
    '--blobHost',
    '127.0.0.1',
    '--queueHost',
    '127.0.0.1',
    '--tableHost',
    '127.0.0.1',
    '--blobPort',
    '0',
    '--queuePort',
    '0',
    '--tablePort',
    '0',
    '--disableTelemetry',
    '--silent',
    // The storage SDKs move their x-ms-version ahead of Azurite's now and then; a local emulator should not
    // break on that (https://github.com/Azure/Azurite/issues/2651).
    '--skipApiVersionCheck',
  ];
  if (options.location === undefined) {
    args.push('--inMemoryPersistence');
  } else {
    mkdirSync(options.location, { recursive: true });
    args.push('--location', options.location);
  }

  const child = spawn(process.execPath, [join(__dirname, 'azuriteProcess.js'), script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  // The IPC channel exists so that the child notices our death; it must not keep this process alive.
  child.channel?.unref();

  const output: string[] = [];
  const remember = (line: string): void => {
    output.push(line);
    if (output.length > 40) output.shift();
  };
  const urls = new Map<string, string>();

  const ready = new Promise<void>((resolve, reject) => {
    const timeoutMs = options.startTimeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new AzuriteStartError(`Azurite did not start within ${timeoutMs} ms:\n${output.join('\n')}`));
    }, timeoutMs);
    const onLine = (line: string): void => {
      remember(line);
      const m = LISTENING.exec(line);
      if (m?.[1] && m[2]) {
        urls.set(m[1], m[2]);
        if (urls.size === 3) {
          clearTimeout(timer);
          resolve();
        }
      }
    };
    forEachLine(child, onLine);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new AzuriteStartError(`Azurite could not be started: ${error.message}`, { cause: error }));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new AzuriteStartError(
          `Azurite exited before it was ready (${signal ?? `code ${code}`}):\n${output.join('\n')}`.trimEnd(),
        ),
      );
    });
  });
  await ready;

  // After start-up the pipes stay read (so Azurite never blocks on a full pipe) but do not hold this process.
  for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
  child.unref();

  const endpoint = (service: string): string => `${urls.get(service)}/${AZURITE_ACCOUNT_NAME}`;
  const port = (service: string): number => Number(new URL(urls.get(service) ?? '').port);
  const blobEndpoint = endpoint('Blob');
  const queueEndpoint = endpoint('Queue');
  const tableEndpoint = endpoint('Table');
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  let stopping: Promise<void> | undefined;
  return {
    connectionString: azuriteConnectionString({ blob: blobEndpoint, queue: queueEndpoint, table: tableEndpoint }),
    blobEndpoint,
    queueEndpoint,
    tableEndpoint,
    ports: { blob: port('Blob'), queue: port('Queue'), table: port('Table') },
    pid: child.pid ?? -1,
    stop(): Promise<void> {
      stopping ??= stopChild(child, exited);
      return stopping;
    },
  };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.ref(); // so that this process waits for the exit
  child.kill('SIGTERM');
  // Azurite closes its servers on SIGTERM (persisting its data); a stuck one is killed after 5 s.
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
  try {
    await exited;
  } finally {
    clearTimeout(killer);
  }
}

function forEachLine(child: ChildProcess, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, nl).replace(/\r$/, ''));
        pending = pending.slice(nl + 1);
      }
    });
  }
}
