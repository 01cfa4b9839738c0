/**
 * Key Vault throttling slows a rotation down; it never fails objects.
 *
 * Inside a process, the per-vault ThrottleGate (keys/throttle.ts) already makes every call wait out a 429's
 * `Retry-After`, within a budget. A storm longer than that budget surfaces as CseError 'KeyUnavailable' with
 * `retryAfterSeconds`. Thrown from a rotation job, that would count as a failed delivery, and five of them move
 * the job to the poison queue, whose accounting records the job's objects as failed. So a throttled job is
 * instead sent again, invisible for the time the vault asked for (plus jitter, so that many instances do not
 * return at the same instant), and its delivery ends successfully: the dequeue count starts over, and the job
 * continues where it stopped (every step is idempotent: objects already re-wrapped count as re-wrapped, pages
 * already stored are not listed again).
 *
 * Only throttling is treated this way. An unreachable vault (no Retry-After) is a real failure and keeps the
 * queue's retry-then-poison path.
 */
import { CseError } from '../errors';
import type { JobQueue } from './context';
import { encodeForQueue, type RotationJob } from './jobMessages';

/** Longest pause per throttled delivery (a vault's Retry-After is seconds in practice). */
export const MAX_THROTTLE_PAUSE_SECONDS = 600;

/** The pause a throttled Key Vault asked for, if `error` is (or is caused by) throttling; otherwise undefined. */
export function throttleRetryAfterSeconds(error: unknown): number | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof CseError && e.code === 'KeyUnavailable' && e.retryAfterSeconds !== undefined) {
      return e.retryAfterSeconds;
    }
  }
  return undefined;
}

/** Seconds to keep the job invisible: the vault's Retry-After, at least 1 s, plus up to 25 % jitter. */
export function pauseSeconds(retryAfterSeconds: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_THROTTLE_PAUSE_SECONDS, Math.max(1, Math.ceil(retryAfterSeconds)));
  return Math.min(MAX_THROTTLE_PAUSE_SECONDS, base + Math.floor(base * 0.25 * random()));
}

/** Sends `job` again, invisible for `seconds` (to the queue it was delivered from, which therefore exists). */
export async function sendAfterPause(jobs: JobQueue, job: RotationJob, seconds: number): Promise<void> {
  await jobs.queue.sendMessage(encodeForQueue(job), { visibilityTimeout: seconds });
}
