/**
 * Messages on the `rotation-jobs` queue. Each names stored state rather than carrying it, so every message is
 * small and any delivery of it (first, redelivered, duplicated) acts on the same stored facts:
 *
 *   start  list nothing; create the scope's unit rows and send one `sweep` per unit (fan-out per container/table)
 *   sweep  list pages of one unit from `token`, store each as work items, send one `page` per work item, and
 *          send itself on with the next token when its time or page budget is spent (resumable)
 *   page   re-wrap the objects of one stored work item and record its result once
 *
 * The Functions host base64-decodes queue messages (host.json `messageEncoding`), and @azure/functions hands a
 * JSON body to the handler already parsed; `@azure/storage-queue` does not encode, so `encodeForQueue` does.
 */
import { CseError } from '../errors';

export const ROTATION_JOBS_QUEUE = 'rotation-jobs';
/** Where the host moves a message after maxDequeueCount failed deliveries (`<queue>-poison`). */
export const ROTATION_JOBS_POISON_QUEUE = `${ROTATION_JOBS_QUEUE}-poison`;

export type RotationJob =
  | { readonly kind: 'start'; readonly rotation: string }
  | {
      readonly kind: 'sweep';
      readonly rotation: string;
      readonly unit: string;
      readonly page: number;
      readonly token?: string;
    }
  | { readonly kind: 'page'; readonly rotation: string; readonly item: string };

/** The message text for @azure/storage-queue `sendMessage`: base64 of the JSON, as the host expects. */
export function encodeForQueue(job: RotationJob): string {
  return Buffer.from(JSON.stringify({ v: 1, ...job }), 'utf8').toString('base64');
}

/**
 * Validates a message as the trigger delivers it (an object, or a string holding JSON). Throws CseError
 * 'InvalidMessage'.
 */
export function decodeJob(message: unknown): RotationJob {
  let value = message;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw invalid('not JSON');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('not a JSON object');
  const v = value as Record<string, unknown>;
  if (v['v'] !== 1) throw invalid('unknown version');
  const rotation = v['rotation'];
  if (typeof rotation !== 'string' || rotation === '') throw invalid('no rotation id');
  switch (v['kind']) {
    case 'start':
      return { kind: 'start', rotation };
    case 'sweep': {
      const unit = v['unit'];
      const page = v['page'];
      const token = v['token'];
      if (typeof unit !== 'string' || unit === '') throw invalid('no unit');
      if (typeof page !== 'number' || !Number.isSafeInteger(page) || page < 0) throw invalid('bad page number');
      if (token !== undefined && typeof token !== 'string') throw invalid('bad continuation token');
      return token === undefined
        ? { kind: 'sweep', rotation, unit, page }
        : { kind: 'sweep', rotation, unit, page, token };
    }
    case 'page': {
      const item = v['item'];
      if (typeof item !== 'string' || !item.startsWith('i:')) throw invalid('no work item');
      return { kind: 'page', rotation, item };
    }
    default:
      throw invalid('unknown kind');
  }
}

function invalid(what: string): CseError {
  return new CseError('InvalidMessage', `not a rotation job message: ${what}`);
}
