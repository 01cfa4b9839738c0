/**
 * Rotation progress in the `rotations` table, exact under redelivery and concurrency.
 *
 * Layout (PartitionKey / RowKey):
 *   lock  / lock                  the running rotation's id: created with insert semantics, so two starts cannot
 *                                 both win; deleted (If-Match) when that rotation finishes
 *   index / {id}                  one row per rotation, for listing (ids sort newest first)
 *   {id}  / rotation              the record: target, scope, status, times and the running totals
 *   {id}  / u:{b|t}:{name}        one row per container (b) or table (t) of the scope: swept yet?
 *   {id}  / i:{unit}:{page}:{part} one row per work item: its objects and, once done, its result
 *
 * Every change of the totals is an entity-group transaction in the rotation's partition that changes the record
 * (If-Match) together with the row it accounts for (an item created, an item's result, a unit swept). A work
 * item's result is therefore added exactly once: the transaction that marks it done is the one that adds it, and
 * it fails as a whole (412) if another delivery got there first. The transaction that accounts for the last
 * outstanding item or unit also sets the final status, so completion needs no polling and cannot be missed.
 */
import { randomBytes } from 'node:crypto';
import type { TableClient, TableEntityResult, TransactionAction } from '@azure/data-tables';
import { CseError } from '../errors';
import { storageStatus } from '../storage/storageErrors';
import { addKeyCounts, decodeKeyCounts, encodeKeyCounts, type KeyCounts } from './snapshotCounts';
import type { RotationCounts, RotationFailure, RotationScope, RotationStatus } from './types';
import { ROTATION_STATUSES, blobObjectName, entityObjectName } from './types';
import { decodeEntries, encodeEntries, fromChunkProperties, toChunkProperties, type WorkEntries } from './workItem';

export const ROTATIONS_TABLE = 'rotations';

const LOCK_PARTITION = 'lock';
const LOCK_ROW = 'lock';
const INDEX_PARTITION = 'index';
const RECORD_ROW = 'rotation';

/** Newest first: 13 digits of (10^13 - 1 - start time in ms), then 8 random hex digits. */
const ROTATION_ID = /^\d{13}-[0-9a-f]{8}$/;

export function newRotationId(now: number): string {
  return `${String(9_999_999_999_999 - now).padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
}

export function isRotationId(value: string): boolean {
  return ROTATION_ID.test(value);
}

export type UnitKind = 'container' | 'table';

export interface UnitRef {
  readonly kind: UnitKind;
  readonly name: string;
}

/** `b:{container}` / `t:{table}`: container and table names use only characters valid in a RowKey. */
export function unitKey(unit: UnitRef): string {
  return `${unit.kind === 'container' ? 'b' : 't'}:${unit.name}`;
}

export function parseUnitKey(key: string): UnitRef {
  const kind = key.startsWith('b:') ? 'container' : key.startsWith('t:') ? 'table' : undefined;
  if (kind === undefined || key.length < 3) throw new CseError('InvalidMessage', `not a rotation unit: ${key}`);
  return { kind, name: key.slice(2) };
}

export function itemKey(unit: string, page: number, part: number): string {
  return `i:${unit}:${String(page).padStart(9, '0')}:${String(part).padStart(3, '0')}`;
}

export interface RotationRecord {
  readonly id: string;
  readonly etag: string;
  readonly targetKeyId: string;
  readonly status: RotationStatus;
  readonly scope: RotationScope;
  /** v1.0 blobs are re-encrypted to v2.0 (v1Reencryption.ts) instead of re-wrapped. */
  readonly reencryptV1: boolean;
  readonly startedAt: string;
  readonly finishedAt: string | undefined;
  /** Why the rotation `failed` ('' otherwise). */
  readonly error: string;
  readonly startAcked: boolean;
  readonly units: number;
  readonly unitsDone: number;
  readonly unitsFailed: number;
  readonly items: number;
  readonly itemsDone: number;
  readonly counts: RotationCounts;
  /** Snapshots and previous versions under keys other than the target, per key id (snapshotCounts.ts). */
  readonly snapshotsUnderOldKeys: KeyCounts;
}

export interface UnitRow {
  readonly key: string;
  readonly etag: string;
  readonly done: boolean;
  readonly error: string;
}

export interface ItemRow {
  readonly key: string;
  readonly etag: string;
  readonly unit: string;
  readonly page: number;
  readonly part: number;
  readonly parts: number;
  /** Continuation token after this page; '' when it is the unit's last page. */
  readonly next: string;
  readonly status: 'pending' | 'done';
  readonly queued: boolean;
  readonly lastError: string;
}

export interface ItemDraft {
  readonly work: WorkEntries;
}

export interface PageDraft {
  readonly unit: string;
  readonly page: number;
  readonly next: string;
  readonly parts: readonly ItemDraft[];
  /** Encrypted objects the listing found on this page (in all parts, plus those already current). */
  readonly scanned: number;
  readonly alreadyCurrent: number;
  /** Snapshots and previous versions on this page under keys other than the target, per key id. */
  readonly snapshots?: KeyCounts;
}

export interface ItemResult {
  readonly rewrapped: number;
  readonly legacyV1: number;
  readonly reencrypted: number;
  readonly gone: number;
  readonly failed: number;
  /** Index into the item's entries, and why. */
  readonly failures: readonly (readonly [number, string])[];
}

type Entity = TableEntityResult<Record<string, unknown>>;

/** How often a transaction is retried when another writer changed the record in between. */
const MAX_TRANSACTION_ATTEMPTS = 200;

type Build<S extends string> = (record: RotationRecord) => Promise<TransactionAction[] | { skip: S }>;

export class ProgressStore {
  #tableReady: Promise<void> | undefined;

  constructor(
    readonly table: TableClient,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates the table on first use (once per process). */
  ensureTable(): Promise<void> {
    this.#tableReady ??= this.table.createTable().catch((e: unknown) => {
      this.#tableReady = undefined;
      throw e;
    });
    return this.#tableReady;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Lock and creation

  /** Takes the lock for `id`; returns the holder's id instead when another rotation holds it. */
  async tryLock(id: string): Promise<{ ok: true } | { ok: false; holder: string; etag: string; acquiredAt: number }> {
    await this.ensureTable();
    try {
      await this.table.createEntity({
        partitionKey: LOCK_PARTITION,
        rowKey: LOCK_ROW,
        rotationId: id,
        acquiredAt: BigInt(this.now()),
      });
      return { ok: true };
    } catch (e) {
      if (storageStatus(e) !== 409) throw e;
    }
    const lock = await this.getEntity(LOCK_PARTITION, LOCK_ROW);
    if (lock === undefined) return this.tryLock(id); // released in between
    return { ok: false, holder: str(lock['rotationId']), etag: lock.etag, acquiredAt: num(lock['acquiredAt']) };
  }

  /** Removes the lock if it still names `id` (or, with `etag`, if it is still that exact lock). */
  async releaseLock(id: string, etag?: string): Promise<void> {
    const lock = await this.getEntity(LOCK_PARTITION, LOCK_ROW);
    if (lock === undefined || str(lock['rotationId']) !== id) return;
    try {
      await this.table.deleteEntity(LOCK_PARTITION, LOCK_ROW, { etag: etag ?? lock.etag });
    } catch (e) {
      if (storageStatus(e) !== 404 && storageStatus(e) !== 412) throw e;
    }
  }

  async createRecord(input: {
    id: string;
    targetKeyId: string;
    scope: RotationScope;
    startedAt: number;
    reencryptV1?: boolean;
  }): Promise<void> {
    const scopeBytes = Buffer.from(JSON.stringify(input.scope), 'utf8');
    await this.table.createEntity({
      partitionKey: input.id,
      rowKey: RECORD_ROW,
      targetKeyId: input.targetKeyId,
      status: 'running',
      reencryptV1: input.reencryptV1 === true,
      startedAt: new Date(input.startedAt).toISOString(),
      finishedAt: '',
      error: '',
      startAcked: false,
      units: BigInt(input.scope.containers.length + input.scope.tables.length),
      unitsDone: 0n,
      unitsFailed: 0n,
      items: 0n,
      itemsDone: 0n,
      ...zeroCounts(),
      ...toChunkProperties('s', scopeBytes),
    });
    await this.table.upsertEntity({ partitionKey: INDEX_PARTITION, rowKey: input.id }, 'Replace');
  }

  async ackStart(id: string): Promise<void> {
    await this.table.updateEntity({ partitionKey: id, rowKey: RECORD_ROW, startAcked: true }, 'Merge');
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reading

  async getRecord(id: string): Promise<RotationRecord | undefined> {
    const e = await this.getEntity(id, RECORD_ROW);
    return e === undefined ? undefined : toRecord(id, e);
  }

  /** Newest first. */
  async listIds(top: number): Promise<string[]> {
    await this.ensureTable();
    const pages = this.table
      .listEntities({ queryOptions: { filter: `PartitionKey eq '${INDEX_PARTITION}'`, select: ['RowKey'] } })
      .byPage({ maxPageSize: top });
    const ids: string[] = [];
    for await (const page of pages) {
      for (const e of page) if (ids.length < top && typeof e.rowKey === 'string') ids.push(e.rowKey);
      if (ids.length >= top) break;
    }
    return ids;
  }

  async getUnit(id: string, unit: string): Promise<UnitRow | undefined> {
    const e = await this.getEntity(id, `u:${unit}`);
    return e === undefined ? undefined : toUnit(unit, e);
  }

  /** Creates the unit's row unless it exists (a redelivered start step). */
  async ensureUnit(id: string, unit: string): Promise<UnitRow> {
    try {
      await this.table.createEntity({
        partitionKey: id,
        rowKey: `u:${unit}`,
        done: false,
        error: '',
        hasFailures: false,
      });
    } catch (e) {
      if (storageStatus(e) !== 409) throw e;
    }
    const row = await this.getUnit(id, unit);
    if (row === undefined) throw new CseError('RotationNotFound', `rotation ${id}: unit ${unit} vanished`);
    return row;
  }

  async getItem(id: string, key: string): Promise<ItemRow | undefined> {
    const e = await this.getEntity(id, key, ITEM_SUMMARY_COLUMNS);
    return e === undefined ? undefined : toItem(key, e);
  }

  async getItemEntries(id: string, key: string): Promise<WorkEntries> {
    const e = await this.getEntity(id, key);
    if (e === undefined) throw new CseError('RotationNotFound', `rotation ${id}: work item ${key} does not exist`);
    const unit = parseUnitKey(str(e['unit']));
    return decodeEntries(unit.kind === 'container' ? 'blob' : 'entity', fromChunkProperties('o', e));
  }

  /** Failures recorded so far: per object (items) and per unit whose listing failed; at most `limit`. */
  async listFailures(id: string, limit: number): Promise<RotationFailure[]> {
    const out: RotationFailure[] = [];
    const rows = this.table.listEntities({
      queryOptions: { filter: `PartitionKey eq '${escapeOData(id)}' and hasFailures eq true` },
    });
    for await (const e of rows) {
      if (out.length >= limit) break;
      const key = e.rowKey ?? '';
      if (key.startsWith('u:')) {
        const unit = parseUnitKey(key.slice(2));
        out.push({ object: `${unit.kind}:${unit.name}`, reason: str(e['error']) });
        continue;
      }
      const unit = parseUnitKey(str(e['unit']));
      const work = decodeEntries(unit.kind === 'container' ? 'blob' : 'entity', fromChunkProperties('o', e));
      for (const [index, why] of decodeFailures(fromChunkProperties('f', e))) {
        if (out.length >= limit) break;
        out.push({ object: objectName(unit, work, index), reason: why });
      }
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Transitions (each one transaction with the record)

  /**
   * Creates a page's work items and adds the page's listing counts. 'exists' when the page was created before
   * (by an earlier delivery of the same sweep step, or a duplicate sweep chain): its stored contents stand.
   */
  async createPage(id: string, draft: PageDraft): Promise<'created' | 'exists' | 'notRunning'> {
    let withWork = 0;
    const actions: TransactionAction[] = draft.parts.map((part, index) => {
      const work = part.work.entries.length;
      if (work > 0) withWork++;
      return [
        'create',
        {
          partitionKey: id,
          rowKey: itemKey(draft.unit, draft.page, index),
          unit: draft.unit,
          page: draft.page,
          part: index,
          parts: draft.parts.length,
          next: draft.next,
          status: work > 0 ? 'pending' : 'done',
          queued: false,
          work: BigInt(work),
          lastError: '',
          hasFailures: false,
          ...toChunkProperties('o', encodeEntries(part.work)),
        },
      ];
    });
    const outcome = await this.transact(id, async (record) => {
      if (record.status !== 'running') return { skip: 'notRunning' };
      const patch = {
        items: BigInt(record.items + draft.parts.length),
        itemsDone: BigInt(record.itemsDone + draft.parts.length - withWork),
        scanned: BigInt(record.counts.scanned + draft.scanned),
        alreadyCurrent: BigInt(record.counts.alreadyCurrent + draft.alreadyCurrent),
      };
      const snapshots: Record<string, string> =
        draft.snapshots === undefined || Object.keys(draft.snapshots).length === 0
          ? {}
          : { snapshots: encodeKeyCounts(addKeyCounts(record.snapshotsUnderOldKeys, draft.snapshots)) };
      return [...actions, recordUpdate(id, record, patch, this.now(), snapshots)];
    });
    if (outcome === 'conflict') return 'exists';
    return outcome === 'notRunning' ? 'notRunning' : 'created';
  }

  async markQueued(id: string, key: string): Promise<void> {
    try {
      await this.table.updateEntity({ partitionKey: id, rowKey: key, queued: true }, 'Merge');
    } catch (e) {
      if (storageStatus(e) !== 404) throw e;
    }
  }

  /** Best effort: the last error of a failed delivery, reported if the item ends in the poison queue. */
  async noteItemError(id: string, key: string, message: string): Promise<void> {
    await this.table
      .updateEntity({ partitionKey: id, rowKey: key, lastError: message.slice(0, 300) }, 'Merge')
      .catch(() => undefined);
  }

  /** Records a work item's result once. */
  async recordItem(
    id: string,
    key: string,
    result: ItemResult,
  ): Promise<'recorded' | 'alreadyRecorded' | 'notRunning'> {
    const failureBytes = encodeFailures(result.failures);
    const outcome = await this.transact(id, async (record) => {
      if (record.status !== 'running') return { skip: 'notRunning' };
      const item = await this.getItem(id, key);
      if (item === undefined) throw new CseError('RotationNotFound', `rotation ${id}: work item ${key} does not exist`);
      if (item.status === 'done') return { skip: 'alreadyRecorded' };
      const itemUpdate: TransactionAction = [
        'update',
        {
          partitionKey: id,
          rowKey: key,
          status: 'done',
          rewrapped: BigInt(result.rewrapped),
          legacyV1: BigInt(result.legacyV1),
          reencrypted: BigInt(result.reencrypted),
          gone: BigInt(result.gone),
          failed: BigInt(result.failed),
          hasFailures: result.failures.length > 0,
          ...toChunkProperties('f', failureBytes),
        },
        'Merge',
        { etag: item.etag },
      ];
      const c = record.counts;
      const patch = {
        itemsDone: BigInt(record.itemsDone + 1),
        rewrapped: BigInt(c.rewrapped + result.rewrapped),
        legacyV1: BigInt(c.legacyV1 + result.legacyV1),
        reencrypted: BigInt(c.reencrypted + result.reencrypted),
        gone: BigInt(c.gone + result.gone),
        failed: BigInt(c.failed + result.failed),
      };
      return [itemUpdate, recordUpdate(id, record, patch, this.now())];
    });
    if (outcome === 'conflict') throw new CseError('RotationNotFound', `rotation ${id}: work item ${key} conflict`);
    return outcome === 'done' ? 'recorded' : outcome;
  }

  /** Marks a unit swept (or failed to sweep, with `error`), once. */
  async completeUnit(id: string, unit: string, error = ''): Promise<'recorded' | 'alreadyRecorded' | 'notRunning'> {
    const outcome = await this.transact(id, async (record) => {
      if (record.status !== 'running') return { skip: 'notRunning' };
      const row = await this.getUnit(id, unit);
      if (row === undefined) throw new CseError('RotationNotFound', `rotation ${id}: unit ${unit} does not exist`);
      if (row.done) return { skip: 'alreadyRecorded' };
      const patch = {
        unitsDone: BigInt(record.unitsDone + 1),
        unitsFailed: BigInt(record.unitsFailed + (error === '' ? 0 : 1)),
      };
      return [
        [
          'update',
          { partitionKey: id, rowKey: `u:${unit}`, done: true, error, hasFailures: error !== '' },
          'Merge',
          { etag: row.etag },
        ],
        recordUpdate(id, record, patch, this.now()),
      ];
    });
    if (outcome === 'conflict') throw new CseError('RotationNotFound', `rotation ${id}: unit ${unit} conflict`);
    return outcome === 'done' ? 'recorded' : outcome;
  }

  /** Ends a running rotation as `failed` (it could not run). */
  async failRotation(id: string, error: string): Promise<boolean> {
    const outcome = await this.transact(id, async (record) => {
      if (record.status !== 'running') return { skip: 'notRunning' };
      return [
        [
          'update',
          { partitionKey: id, rowKey: RECORD_ROW, status: 'failed', error, finishedAt: this.isoNow() },
          'Merge',
          { etag: record.etag },
        ],
      ];
    });
    if (outcome === 'done') await this.releaseLock(id);
    return outcome === 'done';
  }

  /** Completes a rotation that has nothing outstanding (e.g. an empty scope). */
  async completeIfDone(id: string): Promise<boolean> {
    const outcome = await this.transact(id, async (record) => {
      if (record.status !== 'running' || !isComplete(record)) return { skip: 'notComplete' };
      return [recordUpdate(id, record, {}, this.now())];
    });
    return outcome === 'done';
  }

  // -------------------------------------------------------------------------------------------------------------
  // Internals

  /**
   * Runs `build` against a fresh record and submits its actions, retrying when the record (or another row the
   * actions are conditional on) changed in between. 'conflict' when an insert found its row existing.
   * Releases the lock when the transaction finished the rotation.
   */
  private async transact<S extends string>(id: string, build: Build<S>): Promise<'done' | 'conflict' | S> {
    for (let attempt = 1; attempt <= MAX_TRANSACTION_ATTEMPTS; attempt++) {
      const record = await this.getRecord(id);
      if (record === undefined) throw new CseError('RotationNotFound', `rotation ${id} does not exist`);
      const actions = await build(record);
      if (!Array.isArray(actions)) return actions.skip;
      try {
        await this.table.submitTransaction(actions);
      } catch (e) {
        const status = storageStatus(e);
        if (status === 409) return 'conflict';
        if (status === 412) {
          await sleep(Math.random() * Math.min(200, 5 * attempt));
          continue;
        }
        throw e;
      }
      if (finishesRotation(actions)) await this.releaseLock(id).catch(() => undefined);
      return 'done';
    }
    throw new CseError(
      'ConditionNotMet',
      `rotation ${id}: progress kept changing; giving up after ${MAX_TRANSACTION_ATTEMPTS} attempts`,
    );
  }

  private async getEntity(partitionKey: string, rowKey: string, select?: string[]): Promise<Entity | undefined> {
    try {
      return await this.table.getEntity<Record<string, unknown>>(
        partitionKey,
        rowKey,
        select === undefined ? undefined : { queryOptions: { select } },
      );
    } catch (e) {
      if (storageStatus(e) === 404) return undefined;
      throw e;
    }
  }

  private isoNow(): string {
    return new Date(this.now()).toISOString();
  }
}

const ITEM_SUMMARY_COLUMNS = ['unit', 'page', 'part', 'parts', 'next', 'status', 'queued', 'lastError'];

/** The record's Merge action: the patch, plus the final status when the patch leaves nothing outstanding. */
function recordUpdate(
  id: string,
  record: RotationRecord,
  patch: Record<string, bigint>,
  now: number,
  /** Other record properties to set (the snapshot counts). */
  extra: Record<string, string> = {},
): TransactionAction {
  const after = {
    units: record.units,
    unitsDone: Number(patch['unitsDone'] ?? record.unitsDone),
    unitsFailed: Number(patch['unitsFailed'] ?? record.unitsFailed),
    items: Number(patch['items'] ?? record.items),
    itemsDone: Number(patch['itemsDone'] ?? record.itemsDone),
    failed: Number(patch['failed'] ?? record.counts.failed),
  };
  const entity: { partitionKey: string; rowKey: string; [name: string]: unknown } = {
    partitionKey: id,
    rowKey: RECORD_ROW,
    ...extra,
    ...patch,
  };
  if (isComplete(after)) {
    entity['status'] = finalStatus(after);
    entity['finishedAt'] = new Date(now).toISOString();
  }
  return ['update', entity, 'Merge', { etag: record.etag }];
}

function isComplete(r: { units: number; unitsDone: number; items: number; itemsDone: number }): boolean {
  return r.unitsDone >= r.units && r.itemsDone >= r.items;
}

function finalStatus(r: { units: number; unitsFailed: number; failed: number }): RotationStatus {
  if (r.units > 0 && r.unitsFailed === r.units) return 'failed';
  return r.failed > 0 || r.unitsFailed > 0 ? 'completedWithFailures' : 'completed';
}

function finishesRotation(actions: TransactionAction[]): boolean {
  return actions.some((a) => {
    const entity = a[1] as Record<string, unknown>;
    return entity['rowKey'] === RECORD_ROW && typeof entity['status'] === 'string' && entity['status'] !== 'running';
  });
}

function zeroCounts(): Record<keyof RotationCounts, bigint> {
  return { scanned: 0n, rewrapped: 0n, alreadyCurrent: 0n, legacyV1: 0n, reencrypted: 0n, gone: 0n, failed: 0n };
}

function toRecord(id: string, e: Entity): RotationRecord {
  const status = str(e['status']) as RotationStatus;
  if (!ROTATION_STATUSES.includes(status))
    throw new CseError('RotationNotFound', `rotation ${id} has a corrupt status`);
  const scope = JSON.parse(fromChunkProperties('s', e).toString('utf8')) as RotationScope;
  const finishedAt = str(e['finishedAt']);
  return {
    id,
    etag: e.etag,
    targetKeyId: str(e['targetKeyId']),
    status,
    scope: { containers: scope.containers ?? [], tables: scope.tables ?? [] },
    reencryptV1: e['reencryptV1'] === true,
    startedAt: str(e['startedAt']),
    finishedAt: finishedAt === '' ? undefined : finishedAt,
    error: str(e['error']),
    startAcked: e['startAcked'] === true,
    units: num(e['units']),
    unitsDone: num(e['unitsDone']),
    unitsFailed: num(e['unitsFailed']),
    items: num(e['items']),
    itemsDone: num(e['itemsDone']),
    counts: {
      scanned: num(e['scanned']),
      rewrapped: num(e['rewrapped']),
      alreadyCurrent: num(e['alreadyCurrent']),
      legacyV1: num(e['legacyV1']),
      reencrypted: num(e['reencrypted']),
      gone: num(e['gone']),
      failed: num(e['failed']),
    },
    snapshotsUnderOldKeys: decodeKeyCounts(e['snapshots']),
  };
}

function toUnit(key: string, e: Entity): UnitRow {
  return { key, etag: e.etag, done: e['done'] === true, error: str(e['error']) };
}

function toItem(key: string, e: Entity): ItemRow {
  const status = str(e['status']);
  return {
    key,
    etag: e.etag,
    unit: str(e['unit']),
    page: num(e['page']),
    part: num(e['part']),
    parts: num(e['parts']),
    next: str(e['next']),
    status: status === 'done' ? 'done' : 'pending',
    queued: e['queued'] === true,
    lastError: str(e['lastError']),
  };
}

function encodeFailures(failures: readonly (readonly [number, string])[]): Buffer {
  return Buffer.from(JSON.stringify(failures), 'utf8');
}

function decodeFailures(bytes: Buffer): [number, string][] {
  if (bytes.length === 0) return [];
  const parsed: unknown = JSON.parse(bytes.toString('utf8'));
  if (!Array.isArray(parsed)) return [];
  return parsed.filter(
    (f): f is [number, string] => Array.isArray(f) && typeof f[0] === 'number' && typeof f[1] === 'string',
  );
}

function objectName(unit: UnitRef, work: WorkEntries, index: number): string {
  if (work.kind === 'blob') {
    const entry = work.entries[index];
    return entry === undefined ? `container:${unit.name}` : blobObjectName(unit.name, entry.name);
  }
  const entry = work.entries[index];
  return entry === undefined ? `table:${unit.name}` : entityObjectName(unit.name, entry.partitionKey, entry.rowKey);
}

function escapeOData(value: string): string {
  return value.replace(/'/g, "''");
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function num(value: unknown): number {
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'number') return value;
  return 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
