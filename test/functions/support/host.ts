/**
 * The local Functions host for the blob API tests and the HTTP benchmark: test/helpers/localHost.ts (the compiled
 * host in a child process, on a free port, with its own temporary app root) with explicit app settings, plus the
 * host process's peak RSS (VmHWM) for the memory checks.
 */
import { startLocalHost } from '../../helpers/localHost';
import { peakRssBytes } from '../../helpers/processMemory';

export interface TestHost {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string;
  readonly pid: number;
  /** The host's log so far (for failure messages). */
  log(): string;
  /** Peak resident set size of the host process so far, in bytes (Linux /proc VmHWM). */
  peakRssBytes(): number;
  stop(): Promise<void>;
}

/** `settings` are the app settings (AzureWebJobsStorage, CSE_*, LOCALHOST_*). */
export async function startTestHost(settings: Record<string, string>): Promise<TestHost> {
  const { AzureWebJobsStorage: storage, ...env } = settings;
  const host = await startLocalHost({ ...(storage === undefined ? {} : { storage }), env });
  return {
    url: host.baseUrl,
    pid: host.pid,
    log: () => host.logs.join('\n'),
    peakRssBytes: () => peakRssBytes(host.pid),
    stop: async () => {
      await host.stop();
    },
  };
}
