/**
 * Starts the local Functions host (dist/localhost/main.js, compiled next to this file) as a child process for the
 * blob API tests, with explicit settings, on a free port, and reads its peak RSS (VmHWM) for the memory test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../helpers/paths';

export interface TestHost {
  readonly url: string;
  readonly pid: number;
  /** The host's log so far (for failure messages). */
  log(): string;
  /** Peak resident set size of the host process so far, in bytes (Linux /proc VmHWM). */
  peakRssBytes(): number;
  stop(): Promise<void>;
}

const READY = /Local host ready at (http:\/\/localhost:\d+)/;

/** `settings` are the app settings (AzureWebJobsStorage, CSE_*, LOCALHOST_*); the rest of the env is dropped. */
export async function startTestHost(settings: Record<string, string>): Promise<TestHost> {
  const distRoot = join(__dirname, '..', '..', '..');
  const main = join(distRoot, 'localhost', 'main.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [main, '--root', projectRoot(), '--main', join(distRoot, 'functions', '*.js')],
    {
      cwd: projectRoot(),
      env: {
        PATH: process.env.PATH ?? '',
        NODE_PATH: process.env.NODE_PATH ?? join(projectRoot(), 'node_modules'),
        PORT: '0',
        LOCALHOST_SHUTDOWN_TIMEOUT_SECONDS: '2',
        ...settings,
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`local host did not start within 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.length > 200_000) output = output.slice(-100_000);
      const m = READY.exec(output);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`local host exited (${code}) during start:\n${output}`));
    });
  });
  const pid = child.pid!;
  return {
    url,
    pid,
    log: () => output,
    peakRssBytes: () => {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      if (kb === undefined) throw new Error('no VmHWM in /proc status');
      return Number(kb) * 1024;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
