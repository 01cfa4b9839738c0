/**
 * Benchmark runner: `npm run bench [substring ...]`.
 *
 * Runs every compiled `dist/bench/*.bench.js` (optionally only those whose name contains one of the arguments),
 * each in its own child process so that one benchmark's heap, JIT state and peak RSS do not affect another's.
 * Each benchmark prints a markdown section on stdout; this prints them in order under a header describing the
 * machine, ready to paste into docs/BENCHMARKS.md. Exits non-zero if any benchmark fails.
 *
 * Benchmarks report ratios against a baseline measured in the same run (never absolute thresholds), because
 * the machines they run on differ and are shared.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join } from 'node:path';

function main(): number {
  const filters = process.argv.slice(2);
  const files = readdirSync(__dirname)
    .filter((f) => f.endsWith('.bench.js'))
    .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
    .sort();
  if (files.length === 0) {
    console.error(`No benchmarks${filters.length > 0 ? ` matching ${filters.join(', ')}` : ''} in ${__dirname}`);
    return 1;
  }

  const cpu = cpus();
  console.log('# Benchmark run\n');
  console.log(
    `${new Date().toISOString()} · node ${process.version} · ${process.platform}/${process.arch} · ` +
      `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'} · ${Math.round(totalmem() / 2 ** 30)} GiB RAM\n`,
  );

  let failed = 0;
  for (const file of files) {
    const started = Date.now();
    const result = spawnSync(process.execPath, ['--expose-gc', join(__dirname, file)], {
      stdio: ['ignore', 'inherit', 'inherit'],
      cwd: process.cwd(),
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (result.status !== 0) {
      failed++;
      console.error(`${basename(file)} failed (exit ${result.status ?? result.signal}) after ${seconds} s`);
    } else {
      console.log(`\n_(${basename(file)}: ${seconds} s)_\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
