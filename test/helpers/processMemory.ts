import { readFileSync } from 'node:fs';

/**
 * Peak resident set size of a process so far, in bytes: VmHWM from /proc/<pid>/status (Linux). The memory tests
 * and benchmarks compare it across sizes; `getrusage` maxrss would not do, since it survives exec.
 */
export function peakRssBytes(pid: number | 'self'): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

/** Resident set size of a process now, in bytes: VmRSS from /proc/<pid>/status (Linux). */
export function residentBytes(pid: number | 'self'): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb) * 1024;
}
