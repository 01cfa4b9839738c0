/**
 * Named points of the ingestion procedure where a worker crash matters, and a TEST-ONLY way to crash there.
 *
 *   after-stage   every block of the target is staged, nothing committed (the target does not exist yet)
 *   after-commit  the target is committed, the source not yet deleted
 *   after-delete  the source is deleted, the queue message not yet completed
 *
 * The procedure calls an `onStep` hook at each point. Tests that run the procedure in-process pass their own
 * hook (e.g. to change the source between commit and delete). Tests that run it in the local Functions host
 * set INGEST_TEST_CRASH_AT=<point> in the host's environment: the procedure then kills its own process with
 * SIGKILL at that point (no cleanup, no lease release: what an out-of-memory kill or a lost instance does), and
 * the test restarts the host to see the message redelivered. This variable is read only here, only by the
 * ingestion procedure, and must never be set outside tests.
 */
import { CseError } from '../errors';

export const CRASH_POINTS = ['after-stage', 'after-commit', 'after-delete'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

/** The environment variable of the test-only crash hook. Deliberately not a CSE_* app setting. */
export const CRASH_AT_VARIABLE = 'INGEST_TEST_CRASH_AT';

export type StepHook = (point: CrashPoint) => void | Promise<void>;

/**
 * The hook INGEST_TEST_CRASH_AT asks for, or undefined when it is unset. An unknown point is a
 * ConfigurationError (a typo must not silently test nothing).
 */
export function crashHookFromEnvironment(env: Record<string, string | undefined> = process.env): StepHook | undefined {
  const value = env[CRASH_AT_VARIABLE]?.trim();
  if (value === undefined || value === '') return undefined;
  if (!(CRASH_POINTS as readonly string[]).includes(value)) {
    throw new CseError(
      'ConfigurationError',
      `${CRASH_AT_VARIABLE} (test only) must be one of ${CRASH_POINTS.join(', ')}; got ${JSON.stringify(value)}`,
    );
  }
  return (point) => {
    if (point !== value) return;
    process.stderr.write(`${CRASH_AT_VARIABLE}=${point}: killing this process (test crash injection)\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}
