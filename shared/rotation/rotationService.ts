/**
 * Key rotation of a storage account: the entry points the functions call.
 *
 *   start(request)      POST /api/rotations: fixes the target key (a versionless Key Vault id becomes its current
 *                       version now) and the scope, takes the one-rotation-at-a-time lock, queues the start step
 *   get(id) / list()    GET /api/rotations/{id} and GET /api/rotations
 *   handleJob(message)  the `rotation-jobs` queue trigger (start, sweep and page steps)
 *   handlePoison(msg)   the `rotation-jobs-poison` queue trigger
 *
 * See docs/ROTATION.md for the design (work items, exact counts, faults).
 */
import { CseError, isCseError } from '../errors';
import { createRotationContext, type RotationContext, type RotationDeps } from './context';
import { decodeJob } from './jobMessages';
import { runPage } from './pageWorker';
import { runPoison } from './poison';
import { ROTATIONS_TABLE, isRotationId, newRotationId, type RotationRecord } from './progressStore';
import { runStart, runSweep } from './sweep';
import { pauseSeconds, sendAfterPause, throttleRetryAfterSeconds } from './throttlePause';
import type { RotationScope, RotationView } from './types';

export interface StartRotationRequest {
  /** Default CSE_KEY_ID. A versionless Key Vault id is fixed to its current version when the rotation starts. */
  readonly targetKeyId?: string;
  /**
   * The scope. With neither list, every container and table the allow-lists (CSE_CONTAINERS / CSE_TABLES) allow.
   * With either, exactly the lists given (an omitted list is empty).
   */
  readonly containers?: readonly string[];
  readonly tables?: readonly string[];
  /** Re-encrypt v1.0 blobs to v2.0 instead of re-wrapping them (v1Reencryption.ts). Default false. */
  readonly reencryptV1?: boolean;
}

/** 409 RotationRunning carries the running rotation's id. */
export class RotationRunningError extends CseError {
  constructor(readonly runningId: string) {
    super('RotationRunning', `Rotation ${runningId} is running; start another when it has finished.`);
  }
}

/** Validates the JSON body of POST /api/rotations (an absent or empty body is `{}`). Throws InvalidRequest. */
export function parseStartRequest(body: unknown): StartRotationRequest {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw invalidRequest('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const name of Object.keys(b)) {
    if (name !== 'targetKeyId' && name !== 'containers' && name !== 'tables' && name !== 'reencryptV1') {
      throw invalidRequest(
        `unknown member "${name.slice(0, 50)}" (allowed: targetKeyId, containers, tables, reencryptV1)`,
      );
    }
  }
  const out: { targetKeyId?: string; containers?: string[]; tables?: string[]; reencryptV1?: boolean } = {};
  if (b['reencryptV1'] !== undefined) {
    if (typeof b['reencryptV1'] !== 'boolean') throw invalidRequest('reencryptV1 must be true or false');
    out.reencryptV1 = b['reencryptV1'];
  }
  if (b['targetKeyId'] !== undefined) {
    if (typeof b['targetKeyId'] !== 'string' || b['targetKeyId'] === '') {
      throw invalidRequest('targetKeyId must be a non-empty string');
    }
    out.targetKeyId = b['targetKeyId'];
  }
  for (const name of ['containers', 'tables'] as const) {
    const list = b[name];
    if (list === undefined) continue;
    if (!Array.isArray(list) || !list.every((n) => typeof n === 'string')) {
      throw invalidRequest(`${name} must be a list of names`);
    }
    out[name] = [...new Set(list as string[])];
  }
  return out;
}

export class RotationService {
  readonly #ctx: RotationContext;

  constructor(deps: RotationDeps) {
    this.#ctx = createRotationContext(deps);
  }

  async start(request: StartRotationRequest): Promise<{ id: string }> {
    const ctx = this.#ctx;
    const { keys } = ctx.deps;
    const target =
      request.targetKeyId === undefined
        ? await keys.activeKey({ refresh: true })
        : await keys.keyForWriting(request.targetKeyId, { refresh: true });
    const scope = await this.#resolveScope(request);
    const startedAt = ctx.now();
    const id = newRotationId(startedAt);
    await this.#lock(id);
    try {
      await ctx.store.createRecord({
        id,
        targetKeyId: target.keyId,
        scope,
        startedAt,
        reencryptV1: request.reencryptV1 === true,
      });
    } catch (e) {
      await ctx.store.releaseLock(id).catch(() => undefined);
      throw e;
    }
    try {
      await ctx.jobs.send({ kind: 'start', rotation: id });
    } catch (e) {
      await ctx.store.failRotation(id, 'StartFailed: the start step could not be queued').catch(() => undefined);
      throw e;
    }
    ctx.log(
      'info',
      `rotation ${id} started: target ${target.keyId}, ${scope.containers.length} containers, ${scope.tables.length} tables` +
        (request.reencryptV1 === true ? ', re-encrypting v1.0 blobs' : ''),
    );
    return { id };
  }

  /** Throws CseError RotationNotFound. */
  async get(id: string): Promise<RotationView> {
    const record = isRotationId(id) ? await this.#ctx.store.getRecord(id) : undefined;
    if (record === undefined)
      throw new CseError('RotationNotFound', `There is no rotation ${JSON.stringify(id.slice(0, 80))}.`);
    return this.#view(record);
  }

  /** The most recent rotations, newest first. */
  async list(top = 20): Promise<RotationView[]> {
    const ids = await this.#ctx.store.listIds(top);
    const views: RotationView[] = [];
    for (const id of ids) {
      const record = await this.#ctx.store.getRecord(id);
      if (record !== undefined) views.push(await this.#view(record));
    }
    return views;
  }

  /** One `rotation-jobs` message. Throws (for the queue to retry) only on transient failures. */
  async handleJob(message: unknown): Promise<string> {
    let job;
    try {
      job = decodeJob(message);
    } catch (e) {
      if (isCseError(e, 'InvalidMessage')) {
        this.#ctx.log('warn', e.message);
        return `dropped: ${e.message}`;
      }
      throw e;
    }
    try {
      switch (job.kind) {
        case 'start':
          return await runStart(this.#ctx, job);
        case 'sweep':
          return await runSweep(this.#ctx, job);
        case 'page':
          return await runPage(this.#ctx, job);
      }
    } catch (e) {
      // Key Vault throttling slows the rotation down instead of using up the job's deliveries (throttlePause.ts).
      const retryAfter = throttleRetryAfterSeconds(e);
      if (retryAfter === undefined) throw e;
      const pause = pauseSeconds(retryAfter);
      await sendAfterPause(this.#ctx.jobs, job, pause);
      this.#ctx.log('warn', `rotation ${job.rotation}: Key Vault is throttling; ${job.kind} job paused for ${pause} s`);
      return `rotation ${job.rotation}: ${job.kind} job paused for ${pause} s (Key Vault throttling)`;
    }
  }

  /** One `rotation-jobs-poison` message. */
  handlePoison(message: unknown): Promise<string> {
    return runPoison(this.#ctx, message);
  }

  async #lock(id: string): Promise<void> {
    const ctx = this.#ctx;
    for (let attempt = 0; attempt < 5; attempt++) {
      const lock = await ctx.store.tryLock(id);
      if (lock.ok) return;
      const holder = await ctx.store.getRecord(lock.holder);
      const age = ctx.now() - lock.acquiredAt;
      if (holder?.status === 'running') {
        if (!holder.startAcked && age > ctx.tuning.staleStartMs) {
          // Its start step was never queued (the starting process died in between): queue it again.
          await ctx.jobs.send({ kind: 'start', rotation: holder.id });
        }
        throw new RotationRunningError(holder.id);
      }
      if (holder === undefined && age <= ctx.tuning.staleStartMs) throw new RotationRunningError(lock.holder);
      // The holder finished (and its lock was not released) or never got a record: the lock is stale.
      await ctx.store.releaseLock(lock.holder, lock.etag);
    }
    throw new CseError('ConditionNotMet', 'Could not take the rotation lock; try again.');
  }

  async #resolveScope(request: StartRotationRequest): Promise<RotationScope> {
    const { policy, blobService, tableService } = this.#ctx.deps;
    if (request.containers === undefined && request.tables === undefined) {
      const containers: string[] = [];
      for await (const c of blobService.listContainers())
        if (policy.isContainerAllowed(c.name)) containers.push(c.name);
      const tables: string[] = [];
      for await (const t of tableService.listTables()) {
        const name = t.name ?? '';
        if (name !== '' && name !== ROTATIONS_TABLE && policy.isTableAllowed(name)) tables.push(name);
      }
      return { containers: containers.sort(), tables: tables.sort() };
    }
    const containers = [...(request.containers ?? [])];
    const tables = [...(request.tables ?? [])];
    for (const name of containers) policy.assertContainerAllowed(name);
    for (const name of tables) {
      policy.assertTableAllowed(name);
      if (name.toLowerCase() === ROTATIONS_TABLE) {
        throw new CseError('TableNotAllowed', `Table "${ROTATIONS_TABLE}" holds the rotations' own progress.`);
      }
    }
    return { containers, tables };
  }

  async #view(record: RotationRecord): Promise<RotationView> {
    const failures =
      record.counts.failed > 0 || record.unitsFailed > 0
        ? await this.#ctx.store.listFailures(record.id, this.#ctx.tuning.failuresListed)
        : [];
    if (record.status === 'failed' && record.error !== '')
      failures.unshift({ object: 'rotation', reason: record.error });
    return {
      id: record.id,
      targetKeyId: record.targetKeyId,
      status: record.status,
      scope: record.scope,
      reencryptV1: record.reencryptV1,
      counts: record.counts,
      snapshotsUnderOldKeys: record.snapshotsUnderOldKeys,
      failures,
      startedAt: record.startedAt,
      finishedAt: record.finishedAt ?? null,
    };
  }
}

function invalidRequest(message: string): CseError {
  return new CseError('InvalidRequest', message);
}
