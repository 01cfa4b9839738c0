/**
 * What the rotation engine needs from the app (injected, so the engine runs the same under the Functions host,
 * the local host and the tests): Storage clients, the key ring, the container/table allow-lists, and tuning.
 */
import type { TableClient, TableServiceClient } from '@azure/data-tables';
import type { BlobServiceClient } from '@azure/storage-blob';
import type { QueueClient } from '@azure/storage-queue';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';
import { encodeForQueue, type RotationJob } from './jobMessages';
import { ProgressStore } from './progressStore';

/** The part of the key ring (shared/keys/keyRing.ts `KeyRing`) a rotation uses. */
export interface RotationKeys {
  /** Resolves key ids read from stored metadata; refuses (KeyNotAllowed) what the configuration does not allow. */
  readonly resolver: KeyResolver;
  /** CSE_KEY_ID as a key for writing; a versionless Key Vault id gives its current version (looked up now with `refresh`). */
  activeKey(options?: { refresh?: boolean }): Promise<KeyEncryptionKey>;
  /** Another allowed key id as a key for writing (a rotation's explicit target, or its stored versioned target). */
  keyForWriting(keyId: string, options?: { refresh?: boolean }): Promise<KeyEncryptionKey>;
}

/** CSE_CONTAINERS / CSE_TABLES. The assert functions throw CseError InvalidName or ContainerNotAllowed / TableNotAllowed. */
export interface ScopePolicy {
  isContainerAllowed(name: string): boolean;
  assertContainerAllowed(name: string): void;
  isTableAllowed(name: string): boolean;
  assertTableAllowed(name: string): void;
}

export interface RotationTuning {
  /** Objects per listing page, hence per work item (blobs and entities). */
  readonly pageSize: number;
  /** Pages one sweep invocation lists before it hands on to a new message (resumability, fairness). */
  readonly sweepPagesPerStep: number;
  /** Time one sweep invocation spends before it hands on to a new message. */
  readonly sweepStepBudgetMs: number;
  /** Attempts per object when it keeps changing (412) before a failure is recorded. */
  readonly maxAttempts: number;
  /** A start that left no trace of running for this long is taken to have crashed (its lock is stale). */
  readonly staleStartMs: number;
  /** Failures listed by GET (counts.failed is always exact). */
  readonly failuresListed: number;
}

export const DEFAULT_TUNING: RotationTuning = {
  pageSize: 200,
  sweepPagesPerStep: 25,
  sweepStepBudgetMs: 20_000,
  maxAttempts: 8,
  staleStartMs: 60_000,
  failuresListed: 1000,
};

export type RotationLogLevel = 'info' | 'warn' | 'error';

export interface RotationDeps {
  readonly blobService: BlobServiceClient;
  readonly tableService: TableServiceClient;
  /** A client for one of the account's tables. */
  readonly tableClient: (table: string) => TableClient;
  /** The `rotations` table. */
  readonly progressTable: TableClient;
  /** The `rotation-jobs` queue. */
  readonly jobsQueue: QueueClient;
  readonly keys: RotationKeys;
  readonly policy: ScopePolicy;
  /** CSE_ROTATION_CONCURRENCY: objects re-wrapped at once per work item. */
  readonly concurrency: number;
  readonly tuning?: Partial<RotationTuning>;
  /** Never receives key material. */
  readonly log?: (level: RotationLogLevel, message: string) => void;
  readonly now?: () => number;
}

/** The deps with defaults applied and the stores built; what the engine's steps receive. */
export interface RotationContext {
  readonly deps: RotationDeps;
  readonly tuning: RotationTuning;
  readonly store: ProgressStore;
  readonly jobs: JobQueue;
  readonly now: () => number;
  log(level: RotationLogLevel, message: string): void;
}

export function createRotationContext(deps: RotationDeps): RotationContext {
  if (!Number.isInteger(deps.concurrency) || deps.concurrency < 1) {
    throw new RangeError(`rotation concurrency must be a positive integer, got ${deps.concurrency}`);
  }
  const now = deps.now ?? Date.now;
  return {
    deps,
    tuning: { ...DEFAULT_TUNING, ...deps.tuning },
    store: new ProgressStore(deps.progressTable, now),
    jobs: new JobQueue(deps.jobsQueue),
    now,
    log: (level, message) => deps.log?.(level, message),
  };
}

/** Sends rotation jobs, creating the queue on first use. */
export class JobQueue {
  #ready: Promise<unknown> | undefined;

  constructor(readonly queue: QueueClient) {}

  async send(job: RotationJob): Promise<void> {
    this.#ready ??= this.queue.createIfNotExists().catch((e: unknown) => {
      this.#ready = undefined;
      throw e;
    });
    await this.#ready;
    await this.queue.sendMessage(encodeForQueue(job));
  }
}
