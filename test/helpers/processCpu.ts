import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Linux reports utime/stime in clock ticks; USER_HZ is 100 on every mainstream architecture. */
const TICKS_PER_SECOND = 100;

/**
 * CPU time a process used so far (user + system, all its threads), in seconds: fields 14 and 15 of
 * /proc/<pid>/stat (Linux). The benchmarks use it to show where the CPU of a run went, process by process.
 */
export function cpuSeconds(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** The CPUs this process may run on (Cpus_allowed_list of /proc/self/status, e.g. "0-3,6"), as ids. */
function allowedCpus(): number[] {
  const list = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  return list.split(',').flatMap((item) => {
    const [from, to] = item.split('-').map(Number);
    if (from === undefined || !Number.isInteger(from)) return [];
    const last = to ?? from;
    return Array.from({ length: last - from + 1 }, (_, i) => from + i);
  });
}

/** Whether processes can be pinned to CPUs here: Linux `taskset` (util-linux) and at least two allowed CPUs. */
export function canPinCpus(): boolean {
  if (allowedCpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Restricts every thread of `pid` to `cpus` (a taskset list such as "0" or "2-3"); new threads inherit it. */
export function pinToCpus(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
}

/**
 * The allowed CPUs as taskset lists: all of them, and split into two halves (with CPUs 0-1: "0" and "1"). Read
 * before pinning this process, since pinning changes what it is allowed.
 */
export function splitCpus(): { lower: string; upper: string; all: string } {
  const cpus = allowedCpus();
  const half = Math.floor(cpus.length / 2);
  return { lower: cpus.slice(0, half).join(','), upper: cpus.slice(half).join(','), all: cpus.join(',') };
}
