/**
 * The poison step: a rotation job that failed maxDequeueCount times (the Functions host then moves it to
 * `rotation-jobs-poison`, or moves it there unprocessed if its workers kept dying) is accounted for instead of
 * lost, so the rotation still finishes and says what it could not do:
 *
 *   page   each object of the work item is looked at once more, without re-wrapping: under the target key (an
 *          earlier delivery re-wrapped it) it counts `rewrapped`, deleted `gone`, anything else `failed` with the
 *          item's last error as the reason;
 *   sweep  the unit is recorded as failed (`container:{name}` / `table:{name}` in the failures);
 *   start  the rotation is recorded as `failed`.
 */
import type { TableClient } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import { ENCRYPTION_DATA_METADATA_KEY, parseEncryptionData } from '../crypto/encryptionData';
import { storageStatus } from '../storage/storageErrors';
import { KEY_METADATA_PROPERTY } from '../tables/entityModel';
import { parseTableKeyMetadata } from '../tables/tableKeyMetadata';
import type { BlobWorkEntry } from './blobRewrap';
import type { RotationContext } from './context';
import type { EntityWorkEntry } from './entityRewrap';
import { failureReason, isTransient, reason } from './faults';
import { decodeJob, type RotationJob } from './jobMessages';
import { tally } from './pageWorker';
import { mapBounded } from '../mapBounded';
import { parseUnitKey } from './progressStore';
import type { ObjectOutcome } from './types';
import { outcomeUnderTarget } from './v1Reencryption';

export async function runPoison(ctx: RotationContext, message: unknown): Promise<string> {
  let job: RotationJob;
  try {
    job = decodeJob(message);
  } catch (e) {
    return `dropped a poison message that is not a rotation job (${failureReason(e)})`;
  }
  const id = job.rotation;
  switch (job.kind) {
    case 'start': {
      const done = await ctx.store.failRotation(
        id,
        reason('StartFailed', 'the rotation could not be started (its start step kept failing)'),
      );
      return done ? `rotation ${id} failed: its start step kept failing` : `rotation ${id} was not running`;
    }
    case 'sweep': {
      const unit = parseUnitKey(job.unit);
      const why = reason('ListingFailed', `the ${unit.kind} could not be listed (its sweep kept failing)`);
      const recorded = await ctx.store.completeUnit(id, job.unit, why);
      return `rotation ${id}: ${job.unit} recorded as failed (${recorded})`;
    }
    case 'page':
      return poisonPage(ctx, id, job.item);
  }
}

async function poisonPage(ctx: RotationContext, id: string, key: string): Promise<string> {
  const record = await ctx.store.getRecord(id);
  if (record === undefined || record.status !== 'running')
    return `rotation ${id} is not running; poison ${key} ignored`;
  const item = await ctx.store.getItem(id, key);
  if (item === undefined) return `rotation ${id}: no work item ${key}; poison message dropped`;
  if (item.status === 'done') return `rotation ${id}: ${key} already recorded`;
  const why = reason(
    'WorkItemFailed',
    `the work item failed on every delivery${item.lastError === '' ? '' : ` (last error: ${item.lastError})`}`,
  );
  const unit = parseUnitKey(item.unit);
  const work = await ctx.store.getItemEntries(id, key);
  const target = record.targetKeyId;
  const outcomes =
    work.kind === 'blob'
      ? await mapBounded(work.entries, ctx.deps.concurrency, (e) =>
          classifyBlob(ctx.deps.blobService.getContainerClient(unit.name), e, target, why, record.reencryptV1),
        )
      : await mapBounded(work.entries, ctx.deps.concurrency, (e) =>
          classifyEntity(ctx.deps.tableClient(unit.name), e, target, why),
        );
  const result = tally(outcomes);
  const recorded = await ctx.store.recordItem(id, key, result);
  return `rotation ${id}: poison ${key} ${recorded} (${result.failed} of ${outcomes.length} failed)`;
}

async function classifyBlob(
  container: ContainerClient,
  entry: BlobWorkEntry,
  targetKeyId: string,
  why: string,
  reencryptV1: boolean,
): Promise<ObjectOutcome> {
  const outcome = await classify(
    why,
    async () => {
      const properties = await container.getBlobClient(entry.name).getProperties();
      const value = properties.metadata?.[ENCRYPTION_DATA_METADATA_KEY];
      if (value === undefined) return undefined;
      const data = parseEncryptionData(value);
      return { keyId: data.wrappedContentKey.keyId, legacyV1: data.protocol === '1.0' };
    },
    targetKeyId,
  );
  if (outcome.kind !== 'rewrapped') return outcome;
  // Under the target key: re-encrypted, re-wrapped, or (a v1.0 blob still to re-encrypt) failed.
  const now = outcome.legacyV1 ? '1.0' : '2.0';
  return outcomeUnderTarget(now, entry.listedV1 === true, reencryptV1) ?? { kind: 'failed', reason: why };
}

async function classifyEntity(
  table: TableClient,
  entry: EntityWorkEntry,
  targetKeyId: string,
  why: string,
): Promise<ObjectOutcome> {
  return classify(
    why,
    async () => {
      const entity = await table.getEntity<Record<string, unknown>>(entry.partitionKey, entry.rowKey, {
        queryOptions: { select: [KEY_METADATA_PROPERTY] },
      });
      const value = entity[KEY_METADATA_PROPERTY];
      if (typeof value !== 'string' || value === '') return undefined;
      const metadata = parseTableKeyMetadata(value);
      return { keyId: metadata.wrappedContentKey.keyId, legacyV1: metadata.protocol === '1.0' };
    },
    targetKeyId,
  );
}

async function classify(
  why: string,
  read: () => Promise<{ keyId: string; legacyV1: boolean } | undefined>,
  targetKeyId: string,
): Promise<ObjectOutcome> {
  try {
    const current = await read();
    if (current !== undefined && current.keyId === targetKeyId)
      return { kind: 'rewrapped', legacyV1: current.legacyV1 };
    return { kind: 'failed', reason: why };
  } catch (e) {
    if (storageStatus(e) === 404) return { kind: 'gone' };
    if (isTransient(e)) throw e;
    return { kind: 'failed', reason: why };
  }
}
