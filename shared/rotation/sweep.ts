/**
 * The sweep: the `start` step fans a rotation out into one sweep per container and table, and each `sweep` step
 * lists pages of its unit (blobs with metadata; entities selecting only the keys and `_ClientEncryptionMetadata1`),
 * stores each page as work items and queues one `page` message per work item.
 *
 * Resumable: a sweep step lists at most `sweepPagesPerStep` pages or for `sweepStepBudgetMs`, then sends itself
 * on with the continuation token. Pages are stored under deterministic keys (unit, page number) together with the
 * token that follows them, so a redelivered step (its invocation died) fast-forwards over the pages already
 * stored, without listing them again, and continues from the stored token. If two sweeps of one unit ever run
 * at once (a duplicated message), the one whose page insert finds the page already stored stops: the other is
 * ahead and carries on.
 *
 * Objects already under the target key when listed are counted `alreadyCurrent` here and never queued (except
 * v1.0 blobs in a rotation that re-encrypts them); objects without encryption data are not part of a rotation and
 * are not counted. Blobs are listed with their snapshots and versions: those cannot be re-wrapped, so the ones
 * under other keys are counted per key id (snapshotCounts.ts) instead of queued.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { ENCRYPTION_DATA_METADATA_KEY, parseEncryptionData } from '../crypto/encryptionData';
import { isCseError } from '../errors';
import { storageStatus } from '../storage/storageErrors';
import { KEY_METADATA_PROPERTY } from '../tables/entityModel';
import { EncryptedTableClient } from '../tables/encryptedTableClient';
import type { BlobWorkEntry } from './blobRewrap';
import type { RotationContext } from './context';
import type { EntityWorkEntry } from './entityRewrap';
import { failureReason, isTransient } from './faults';
import type { RotationJob } from './jobMessages';
import { itemKey, parseUnitKey, unitKey, type ItemRow, type UnitRef } from './progressStore';
import { addKeyCounts, isSnapshotOrPreviousVersion, storedKeyIdOf, type KeyCounts } from './snapshotCounts';
import { splitIntoParts, type WorkEntries } from './workItem';

type StartJob = Extract<RotationJob, { kind: 'start' }>;
type SweepJob = Extract<RotationJob, { kind: 'sweep' }>;

/** Creates the unit rows of the scope and sends one sweep per unit not yet swept. */
export async function runStart(ctx: RotationContext, job: StartJob): Promise<string> {
  const record = await ctx.store.getRecord(job.rotation);
  if (record === undefined || record.status !== 'running')
    return `rotation ${job.rotation} is not running; start ignored`;
  const problem = await targetKeyProblem(ctx, record.targetKeyId);
  if (problem !== undefined) {
    await ctx.store.failRotation(job.rotation, problem);
    return `rotation ${job.rotation} failed: ${problem}`;
  }
  const units: UnitRef[] = [
    ...record.scope.containers.map((name): UnitRef => ({ kind: 'container', name })),
    ...record.scope.tables.map((name): UnitRef => ({ kind: 'table', name })),
  ];
  let sent = 0;
  for (const unit of units) {
    const key = unitKey(unit);
    const row = await ctx.store.ensureUnit(job.rotation, key);
    if (row.done) continue;
    await ctx.jobs.send({ kind: 'sweep', rotation: job.rotation, unit: key, page: 0 });
    sent++;
  }
  await ctx.store.ackStart(job.rotation);
  if (units.length === 0) await ctx.store.completeIfDone(job.rotation);
  return `rotation ${job.rotation} started: ${sent} of ${units.length} units to sweep`;
}

/**
 * undefined when the target key can wrap; otherwise why it cannot (a rotation to it cannot run). Transient
 * problems (Key Vault unreachable) are thrown, for the message to be retried.
 */
export async function targetKeyProblem(ctx: RotationContext, targetKeyId: string): Promise<string | undefined> {
  try {
    await ctx.deps.keys.keyForWriting(targetKeyId);
    return undefined;
  } catch (e) {
    if (isTransient(e)) throw e;
    return `TargetKeyUnusable: ${failureReason(e)}`;
  }
}

export async function runSweep(ctx: RotationContext, job: SweepJob): Promise<string> {
  const id = job.rotation;
  const record = await ctx.store.getRecord(id);
  if (record === undefined || record.status !== 'running') return `rotation ${id} is not running; sweep ignored`;
  const unitRow = await ctx.store.getUnit(id, job.unit);
  if (unitRow === undefined || unitRow.done) return `rotation ${id}: ${job.unit} already swept`;
  const unit = parseUnitKey(job.unit);
  const startedAt = ctx.now();
  let page = job.page;
  let token = job.token;
  for (let steps = 0; ; steps++) {
    if (steps >= ctx.tuning.sweepPagesPerStep || ctx.now() - startedAt > ctx.tuning.sweepStepBudgetMs) {
      await ctx.jobs.send(token === undefined ? { ...job, page } : { ...job, page, token });
      return `rotation ${id}: ${job.unit} swept to page ${page}, continuing`;
    }
    let first = await ctx.store.getItem(id, itemKey(job.unit, page, 0));
    if (first === undefined) {
      const listed = await listPage(ctx, unit, token, record.targetKeyId, record.reencryptV1);
      const created = await ctx.store.createPage(id, {
        unit: job.unit,
        page,
        next: listed.next ?? '',
        parts: splitIntoParts(listed.work).map((work) => ({ work })),
        scanned: listed.scanned,
        alreadyCurrent: listed.alreadyCurrent,
        ...(listed.snapshots === undefined ? {} : { snapshots: listed.snapshots }),
      });
      if (created === 'notRunning') return `rotation ${id} is not running; sweep stopped`;
      if (created === 'exists') return `rotation ${id}: another sweep of ${job.unit} is ahead; this one stops`;
      first = await ctx.store.getItem(id, itemKey(job.unit, page, 0));
      if (first === undefined) throw new Error(`rotation ${id}: page ${page} of ${job.unit} vanished`);
    }
    await queuePage(ctx, id, first);
    if (first.next === '') {
      await ctx.store.completeUnit(id, job.unit);
      return `rotation ${id}: ${job.unit} swept (${page + 1} pages)`;
    }
    token = first.next;
    page++;
  }
}

/** Sends a `page` message for each part of the page still pending and not yet queued. */
async function queuePage(ctx: RotationContext, id: string, first: ItemRow): Promise<void> {
  for (let part = 0; part < first.parts; part++) {
    const row = part === 0 ? first : await ctx.store.getItem(id, itemKey(first.unit, first.page, part));
    if (row === undefined || row.status !== 'pending' || row.queued) continue;
    await ctx.jobs.send({ kind: 'page', rotation: id, item: row.key });
    await ctx.store.markQueued(id, row.key);
  }
}

interface ListedPage {
  readonly work: WorkEntries;
  readonly scanned: number;
  readonly alreadyCurrent: number;
  readonly next: string | undefined;
  /** Snapshots and previous versions under keys other than the target, per key id. */
  readonly snapshots?: KeyCounts;
}

async function listPage(
  ctx: RotationContext,
  unit: UnitRef,
  token: string | undefined,
  targetKeyId: string,
  reencryptV1: boolean,
): Promise<ListedPage> {
  try {
    return unit.kind === 'container'
      ? await listBlobPage(
          ctx.deps.blobService.getContainerClient(unit.name),
          token,
          ctx.tuning.pageSize,
          targetKeyId,
          reencryptV1,
        )
      : await listEntityPage(await entityTable(ctx, unit.name, targetKeyId), token, ctx.tuning.pageSize, targetKeyId);
  } catch (e) {
    // The container or table was deleted (or never existed): nothing (more) to rotate in it.
    if (storageStatus(e) === 404 || isCseError(e, 'EntityNotFound'))
      return { work: emptyWork(unit), scanned: 0, alreadyCurrent: 0, next: undefined };
    throw e;
  }
}

async function listBlobPage(
  container: ContainerClient,
  token: string | undefined,
  pageSize: number,
  targetKeyId: string,
  reencryptV1: boolean,
): Promise<ListedPage> {
  const pages = container
    .listBlobsFlat({ includeMetadata: true, includeSnapshots: true, includeVersions: true })
    .byPage({ maxPageSize: pageSize, ...(token === undefined ? {} : { continuationToken: token }) });
  const result = await pages.next();
  if (result.done === true)
    return { work: { kind: 'blob', entries: [] }, scanned: 0, alreadyCurrent: 0, next: undefined };
  const entries: BlobWorkEntry[] = [];
  let scanned = 0;
  let alreadyCurrent = 0;
  let snapshots: KeyCounts = {};
  for (const blob of result.value.segment.blobItems) {
    const metadata = blob.metadata ?? {};
    const names = Object.keys(metadata);
    const dataName = names.find((n) => n.toLowerCase() === ENCRYPTION_DATA_METADATA_KEY);
    if (dataName === undefined) continue;
    if (isSnapshotOrPreviousVersion(blob)) {
      const keyId = storedKeyIdOf(metadata[dataName] ?? '');
      if (keyId !== targetKeyId) snapshots = addKeyCounts(snapshots, { [keyId]: 1 });
      continue;
    }
    scanned++;
    const stored = storedKeyId(() => {
      const data = parseEncryptionData(metadata[dataName] ?? '');
      return { keyId: data.wrappedContentKey.keyId, v1: data.protocol === '1.0' };
    });
    if (stored?.keyId === targetKeyId && !(stored.v1 && reencryptV1)) {
      alreadyCurrent++;
      continue;
    }
    const mixedCaseNames = names.filter((n) => n !== dataName && n !== n.toLowerCase());
    entries.push({
      name: blob.name,
      etag: blob.properties.etag ?? '',
      ...(mixedCaseNames.length > 0 ? { mixedCaseNames } : {}),
      ...(stored?.v1 === true ? { listedV1: true } : {}),
    });
  }
  return {
    work: { kind: 'blob', entries },
    scanned,
    alreadyCurrent,
    next: result.value.continuationToken || undefined,
    ...(Object.keys(snapshots).length > 0 ? { snapshots } : {}),
  };
}

async function listEntityPage(
  table: EncryptedTableClient,
  token: string | undefined,
  pageSize: number,
  targetKeyId: string,
): Promise<ListedPage> {
  const page = await table.listEntityKeyMetadata({
    // A comparison with a property an entity lacks is false, so only encrypted entities are listed.
    filter: `${KEY_METADATA_PROPERTY} ne ''`,
    pageSize,
    ...(token === undefined ? {} : { continuationToken: token }),
  });
  const entries: EntityWorkEntry[] = [];
  let alreadyCurrent = 0;
  for (const item of page.items) {
    if (item.kind === 'encrypted' && item.metadata.wrappedContentKey.keyId === targetKeyId) {
      alreadyCurrent++;
      continue;
    }
    // Metadata that does not parse goes to the work item too, which records why it cannot be re-wrapped.
    entries.push({ partitionKey: item.partitionKey, rowKey: item.rowKey });
  }
  return {
    work: { kind: 'entity', entries },
    scanned: page.items.length,
    alreadyCurrent,
    next: page.continuationToken,
  };
}

/** The table through EncryptedTableClient, whose key-metadata operations touch only `_ClientEncryptionMetadata1`. */
async function entityTable(ctx: RotationContext, table: string, targetKeyId: string): Promise<EncryptedTableClient> {
  const kek = await ctx.deps.keys.keyForWriting(targetKeyId);
  return new EncryptedTableClient(ctx.deps.tableClient(table), { kek, resolver: ctx.deps.keys.resolver });
}

/** The stored key id, or undefined when the metadata does not parse (the work item then records why). */
function storedKeyId<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (e) {
    if (isCseError(e)) return undefined;
    throw e;
  }
}

function emptyWork(unit: UnitRef): WorkEntries {
  return unit.kind === 'container' ? { kind: 'blob', entries: [] } : { kind: 'entity', entries: [] };
}
