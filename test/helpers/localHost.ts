/**
 * The local Functions host for integration tests: the compiled `localhost/main.js` in a child process, serving
 * the compiled app (by default the real `functions/*.js` built next to this file) on a free port, with its own
 * temporary app root (host.json, local.settings.json, .local/). Pass `storage` from a shared `startAzurite()` to
 * avoid starting an Azurite per host.
 *
 *   const azurite = await startAzurite();
 *   const host = await startLocalHost({ storage: azurite.connectionString, env: { CSE_INGEST_QUEUE: 'ingest-1' } });
 *   const res = await fetch(host.url('/api/blobs/c/b.txt'));
 *   await host.waitForLog(/Executed 'Functions.ingest' \(Succeeded/);
 *   await host.stop(); await azurite.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from './paths';

export interface LocalHostOptions {
  /** The app's files (glob or file, absolute). Default: the compiled `functions/*.js` beside this helper. */
  main?: string;
  /** host.json content. Default: the project's host.json. */
  hostJson?: object;
  /** local.settings.json `Values` (the environment wins over them, as in Core Tools). */
  localSettings?: Record<string, string>;
  /** AzureWebJobsStorage. Default: none, so the host starts its own Azurite (slower; data in the temp root). */
  storage?: string;
  /** Extra environment for the host (undefined removes a variable). */
  env?: Record<string, string | undefined>;
  /** LOCALHOST_QUEUE_LEASE_SECONDS: how long a received message stays invisible (default here: 5). */
  leaseSeconds?: number;
  /** LOCALHOST_SHUTDOWN_TIMEOUT_SECONDS: grace for running invocations on stop (default here: 2). */
  shutdownSeconds?: number;
  /** HTTP port (default 0: a free one). */
  port?: number;
  /** An existing app root to use (kept on stop). Default: a fresh temp dir, removed on stop. */
  root?: string;
  /** How long to wait for the ready line (default 60 s: generous for a loaded machine). */
  startTimeoutMs?: number;
  /** Debug logs from the host. */
  verbose?: boolean;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningLocalHost {
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string;
  readonly port: number;
  /** `baseUrl` + path, e.g. `host.url('/api/items/1')`. */
  url(path: string): string;
  /** The AzureWebJobsStorage connection string the host uses (the embedded Azurite's when it started one). */
  readonly connectionString: string;
  /** The app root (host.json, local.settings.json, .local/). */
  readonly root: string;
  readonly pid: number;
  /** The pid of the Azurite the host started, if it started one. */
  readonly azuritePid: number | undefined;
  /** Every line the host wrote so far (stdout and stderr, in order). */
  readonly logs: readonly string[];
  /**
   * Resolves with the first line matching `pattern` at index `from` or later (default 0: anything logged so far
   * counts); rejects after `timeoutMs` (default 15 s) with the recent log in the message.
   */
  waitForLog(pattern: RegExp | string, options?: { timeoutMs?: number; from?: number }): Promise<string>;
  /** Resolves when the process exits. */
  readonly exited: Promise<ExitInfo>;
  /** Graceful stop (SIGTERM by default); resolves when the host (and its Azurite) exited. */
  stop(signal?: NodeJS.Signals): Promise<ExitInfo>;
  /** SIGKILL: the host dies mid-whatever (its Azurite, if any, exits by itself). */
  kill(): Promise<ExitInfo>;
}

export class LocalHostStartError extends Error {
  override readonly name = 'LocalHostStartError';
  constructor(
    message: string,
    readonly logs: readonly string[],
    readonly exit: ExitInfo | undefined,
  ) {
    super(`${message}\n--- host output ---\n${logs.join('\n')}`);
  }
}

/** Variables a developer's shell may hold that must not leak into a test host. */
const SCRUBBED = /^(AzureWebJobs|CSE_|LOCALHOST_|FUNCTIONS_|PORT$)/;

function mainScript(): string {
  return join(__dirname, '..', '..', 'localhost', 'main.js');
}

function defaultApp(): string {
  return join(__dirname, '..', '..', 'functions', '*.js');
}

/** A compiled test app beside the localhost tests, e.g. `testApp('queueApp')`. */
export function testApp(name: string): string {
  return join(__dirname, '..', 'localhost', 'apps', `${name}.js`);
}

interface Spawned {
  child: ChildProcess;
  root: string;
  ownRoot: boolean;
  logs: string[];
  onLine: Set<(line: string) => void>;
  exited: Promise<ExitInfo>;
}

function spawnHost(options: LocalHostOptions): Spawned {
  const ownRoot = options.root === undefined;
  const root = options.root ?? mkdtempSync(join(tmpdir(), 'localhost-'));
  const hostJson = options.hostJson ?? JSON.parse(readFileSync(join(projectRoot(), 'host.json'), 'utf8'));
  if (ownRoot || options.hostJson) writeFileSync(join(root, 'host.json'), JSON.stringify(hostJson, null, 2));
  if (options.localSettings) {
    writeFileSync(
      join(root, 'local.settings.json'),
      JSON.stringify({ IsEncrypted: false, Values: options.localSettings }, null, 2),
    );
  }

  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!SCRUBBED.test(k)) env[k] = v;
  env.PORT = String(options.port ?? 0);
  env.LOCALHOST_QUEUE_LEASE_SECONDS = String(options.leaseSeconds ?? 5);
  env.LOCALHOST_SHUTDOWN_TIMEOUT_SECONDS = String(options.shutdownSeconds ?? 2);
  if (options.storage !== undefined) env.AzureWebJobsStorage = options.storage;
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }

  const args = [mainScript(), '--root', root, '--main', options.main ?? defaultApp()];
  if (options.verbose) args.push('--verbose');
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  // Nothing of the host keeps this process alive: a test that forgets stop() still ends, and the host then
  // stops by itself (its IPC channel closes). stop() and kill() take a reference again while they wait.
  child.channel?.unref();
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();

  const logs: string[] = [];
  const onLine = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        logs.push(line);
        for (const listener of onLine) listener(line);
      }
    });
  }
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  void exited.then(() => {
    if (ownRoot) removeLater(root);
  });
  return { child, root, ownRoot, logs, onLine, exited };
}

/** Removes a temp root; an Azurite the host started may still be writing there for a moment after a kill. */
function removeLater(dir: string, attempt = 0): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    if (attempt < 10) setTimeout(() => removeLater(dir, attempt + 1), 500).unref();
  }
}

function waitForLine(
  spawned: Spawned,
  pattern: RegExp | string,
  timeoutMs: number,
  from: number,
  what = 'log line',
): Promise<string> {
  const matches = (line: string): boolean =>
    typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line);
  const existing = spawned.logs.slice(from).find(matches);
  if (existing !== undefined) return Promise.resolve(existing);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      spawned.onLine.delete(listener);
      const recent = spawned.logs.slice(-30).join('\n');
      reject(new Error(`No ${what} matching ${String(pattern)} within ${timeoutMs} ms. Recent output:\n${recent}`));
    }, timeoutMs);
    const listener = (line: string): void => {
      if (matches(line)) {
        clearTimeout(timer);
        spawned.onLine.delete(listener);
        resolve(line);
      }
    };
    spawned.onLine.add(listener);
  });
}

/** Starts the host and resolves when it prints its ready line; rejects with its output if it exits first. */
export async function startLocalHost(options: LocalHostOptions = {}): Promise<RunningLocalHost> {
  const spawned = spawnHost(options);
  const { child, logs } = spawned;
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  let ready: string;
  try {
    ready = await Promise.race([
      waitForLine(spawned, /Local host ready at http:\/\/localhost:\d+/, timeoutMs, 0, 'ready line'),
      spawned.exited.then((exit) => {
        throw new LocalHostStartError(`The local host exited before it was ready (${describe(exit)}).`, logs, exit);
      }),
    ]);
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await spawned.exited;
    }
    if (error instanceof LocalHostStartError) throw error;
    throw new LocalHostStartError((error as Error).message.split('\n')[0] ?? 'start failed', logs, undefined);
  }
  const port = Number(/Local host ready at http:\/\/localhost:(\d+)/.exec(ready)?.[1]);
  const azuriteLine = logs.find((l) => l.includes('Started Azurite (pid '));
  const connectionString =
    options.storage ??
    /AzureWebJobsStorage=(\S+)/.exec(azuriteLine ?? '')?.[1] ??
    options.env?.AzureWebJobsStorage ??
    '';
  const azuritePid = azuriteLine ? Number(/Started Azurite \(pid (\d+)\)/.exec(azuriteLine)?.[1]) : undefined;
  const baseUrl = `http://127.0.0.1:${port}`;

  const terminate = async (signal: NodeJS.Signals): Promise<ExitInfo> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.ref();
      child.kill(signal);
      // A host that does not stop in 20 s is killed, and the test sees that in the exit info.
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        return await spawned.exited;
      } finally {
        clearTimeout(killer);
      }
    }
    return spawned.exited;
  };
  return {
    baseUrl,
    port,
    url: (path) => `${baseUrl}${path.startsWith('/') ? '' : '/'}${path}`,
    connectionString,
    root: spawned.root,
    pid: child.pid ?? -1,
    azuritePid,
    logs,
    waitForLog: (pattern, o = {}) => waitForLine(spawned, pattern, o.timeoutMs ?? 15_000, o.from ?? 0),
    exited: keepAliveWhileAwaited(child, spawned.exited),
    stop: (signal = 'SIGTERM') => terminate(signal),
    kill: () => terminate('SIGKILL'),
  };
}

/**
 * Runs the host expecting it not to become ready (a start-up error): resolves with its exit and output. Rejects
 * if it does become ready (and stops it).
 */
export async function runLocalHostUntilExit(
  options: LocalHostOptions = {},
  timeoutMs = 60_000,
): Promise<ExitInfo & { logs: readonly string[] }> {
  const spawned = spawnHost(options);
  const timer = setTimeout(() => spawned.child.kill('SIGKILL'), timeoutMs);
  const readyListener = (line: string): void => {
    if (/Local host ready at/.test(line)) spawned.child.kill('SIGTERM');
  };
  spawned.onLine.add(readyListener);
  const exit = await spawned.exited;
  clearTimeout(timer);
  if (spawned.logs.some((l) => /Local host ready at/.test(l))) {
    throw new Error(`The host started although it should not have:\n${spawned.logs.join('\n')}`);
  }
  return { ...exit, logs: spawned.logs };
}

/**
 * The exit promise, which takes a reference on the child when someone waits for it (`await host.exited`):
 * otherwise a test waiting for a host to exit by itself would see its event loop run dry first.
 */
function keepAliveWhileAwaited(child: ChildProcess, exited: Promise<ExitInfo>): Promise<ExitInfo> {
  return new Proxy(exited, {
    get(target, property) {
      if (property === 'then') child.ref();
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function describe(exit: ExitInfo): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/** Whether a process is alive (for no-orphan checks). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
