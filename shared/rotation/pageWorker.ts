/**
 * The `page` step: re-wrap every object of one stored work item, at most CSE_ROTATION_CONCURRENCY at a time, and
 * record the item's result once (progressStore `recordItem`).
 *
 * Exact under redelivery: an object's outcome depends only on the object's state, never on which delivery looks
 * at it (an object already under the target key counts as re-wrapped, see types.ts `ObjectOutcome`), and the
 * result is added to the totals in the same transaction that marks the item done. A transient error (Key Vault
 * or Storage unavailable) stops the item without recording anything: the queue redelivers it, and after
 * maxDequeueCount deliveries the poison step records it.
 */
import type { KeyEncryptionKey } from '../keys/kek';
import { EncryptedTableClient } from '../tables/encryptedTableClient';
import { rewrapBlob } from './blobRewrap';
import type { RotationContext } from './context';
import { rewrapEntity } from './entityRewrap';
import { failureReason, isTransient } from './faults';
import type { RotationJob } from './jobMessages';
import { keyCallSemaphore, limitedKey, limitedResolver } from './keyCallLimit';
import { mapBounded } from '../mapBounded';
import { parseUnitKey, type ItemResult, type UnitRef } from './progressStore';
import type { ObjectOutcome } from './types';
import type { WorkEntries } from './workItem';

type PageJob = Extract<RotationJob, { kind: 'page' }>;

export async function runPage(ctx: RotationContext, job: PageJob): Promise<string> {
  const id = job.rotation;
  const record = await ctx.store.getRecord(id);
  if (record === undefined || record.status !== 'running') return `rotation ${id} is not running; ${job.item} ignored`;
  const item = await ctx.store.getItem(id, job.item);
  if (item === undefined) return `rotation ${id}: no work item ${job.item}; message ignored`;
  if (item.status === 'done') return `rotation ${id}: ${job.item} already recorded`;

  let target: KeyEncryptionKey;
  try {
    target = await ctx.deps.keys.keyForWriting(record.targetKeyId);
  } catch (e) {
    if (isTransient(e)) throw e;
    const problem = `TargetKeyUnusable: ${failureReason(e)}`;
    await ctx.store.failRotation(id, problem);
    return `rotation ${id} failed: ${problem}`;
  }

  const unit = parseUnitKey(item.unit);
  const work = await ctx.store.getItemEntries(id, job.item);
  let outcomes: ObjectOutcome[];
  try {
    outcomes = await rewrapAll(ctx, unit, work, target, record.reencryptV1);
  } catch (e) {
    await ctx.store.noteItemError(id, job.item, failureReason(e));
    throw e;
  }
  const result = tally(outcomes);
  const recorded = await ctx.store.recordItem(id, job.item, result);
  return `rotation ${id}: ${job.item} ${recorded} (${describe(result, outcomes.length)})`;
}

function rewrapAll(
  ctx: RotationContext,
  unit: UnitRef,
  work: WorkEntries,
  target: KeyEncryptionKey,
  reencryptV1: boolean,
): Promise<ObjectOutcome[]> {
  // CSE_ROTATION_CONCURRENCY also bounds the key operations of all work items of this process together.
  const keyCalls = keyCallSemaphore(ctx.deps, ctx.deps.concurrency);
  const context = {
    resolver: limitedResolver(ctx.deps.keys.resolver, keyCalls),
    target: limitedKey(target, keyCalls),
    maxAttempts: ctx.tuning.maxAttempts,
    reencryptV1,
  };
  const limit = ctx.deps.concurrency;
  if (work.kind === 'blob') {
    const container = ctx.deps.blobService.getContainerClient(unit.name);
    return mapBounded(work.entries, limit, (entry) => rewrapBlob(container, entry, context));
  }
  const table = new EncryptedTableClient(ctx.deps.tableClient(unit.name), {
    kek: context.target,
    resolver: context.resolver,
  });
  return mapBounded(work.entries, limit, (entry) => rewrapEntity(table, entry, context));
}

export function tally(outcomes: readonly ObjectOutcome[]): ItemResult {
  let rewrapped = 0;
  let legacyV1 = 0;
  let reencrypted = 0;
  let gone = 0;
  const failures: [number, string][] = [];
  outcomes.forEach((outcome, index) => {
    if (outcome.kind === 'rewrapped') {
      rewrapped++;
      if (outcome.legacyV1) legacyV1++;
    } else if (outcome.kind === 'reencrypted') {
      reencrypted++;
    } else if (outcome.kind === 'gone') {
      gone++;
    } else {
      failures.push([index, outcome.reason]);
    }
  });
  return { rewrapped, legacyV1, reencrypted, gone, failed: failures.length, failures };
}

function describe(result: ItemResult, objects: number): string {
  return `${objects} objects: ${result.rewrapped} re-wrapped (${result.legacyV1} v1), ${result.reencrypted} re-encrypted, ${result.gone} gone, ${result.failed} failed`;
}
