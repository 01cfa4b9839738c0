/**
 * Key rotation: re-wrap every blob's and entity's content key under a new key-encryption key, in place, without
 * reading or rewriting any content. Thin wiring over shared/rotation (see docs/ROTATION.md).
 *
 * HTTP (under /api, function keys required in Azure):
 *   POST rotations        {"targetKeyId"?, "containers"?: [...], "tables"?: [...], "reencryptV1"?} -> 202 {"id"}
 *                         409 RotationRunning (with the running rotation's "id") while one runs
 *   GET  rotations/{id}   {"id","targetKeyId","status","scope","counts","failures","startedAt","finishedAt"}
 *   GET  rotations?top=   {"rotations":[...]} the most recent first (default 20, at most 100)
 *
 * Queues (AzureWebJobsStorage, base64 messages per host.json):
 *   rotation-jobs         the rotation's steps: start (fan-out per container/table), sweep (pages, resumable),
 *                         page (one work item). A transient failure (Key Vault or Storage unavailable) throws, so
 *                         the host retries it; after maxDequeueCount the host moves it to rotation-jobs-poison.
 *   rotation-jobs-poison  accounts for a step that kept failing (its objects are recorded as failed, not lost).
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getAppServices, type AppServices } from '../shared/appServices';
import { isTableAllowed, isValidTableName } from '../shared/config/azureNames';
import { CseError } from '../shared/errors';
import { ROTATION_JOBS_POISON_QUEUE, ROTATION_JOBS_QUEUE } from '../shared/rotation/jobMessages';
import { ROTATIONS_TABLE } from '../shared/rotation/progressStore';
import type { ScopePolicy } from '../shared/rotation/context';
import { RotationRunningError, RotationService, parseStartRequest } from '../shared/rotation/rotationService';
import { errorBody, errorResponse } from './http/errors';
import { readSmallBody, routeParam } from './http/headers';

const START_BODY_LIMIT = 64 * 1024;
const DEFAULT_LIST = 20;
const MAX_LIST = 100;

/** One RotationService per set of app services (built on first use, like the services themselves). */
const services = new WeakMap<AppServices, RotationService>();

export async function rotationService(): Promise<RotationService> {
  const appServices = await getAppServices();
  let service = services.get(appServices);
  if (service === undefined) {
    const { storage } = appServices;
    service = new RotationService({
      blobService: appServices.blobService,
      tableService: storage.table,
      tableClient: storage.tableClient,
      progressTable: storage.tableClient(ROTATIONS_TABLE),
      jobsQueue: storage.queue.getQueueClient(ROTATION_JOBS_QUEUE),
      keys: appServices.keyRing,
      policy: scopePolicy(appServices),
      concurrency: appServices.config.rotationConcurrency,
      // The service outlives any one invocation, so its own progress lines go to the worker's console, which
      // both the Functions host and the local host collect. They carry ids and counts, never key material.
      log: (level, message) => console[level](`[rotation] ${message}`),
    });
    services.set(appServices, service);
  }
  return service;
}

/** CSE_CONTAINERS and CSE_TABLES, with Azure's naming rules checked first (InvalidName). */
function scopePolicy(appServices: AppServices): ScopePolicy {
  const { containers } = appServices;
  const tables = appServices.config.tables;
  return {
    isContainerAllowed: (name) => containers.isAllowed(name),
    assertContainerAllowed: (name) => containers.assertAllowed(name),
    isTableAllowed: (name) => isValidTableName(name) && isTableAllowed(tables, name),
    assertTableAllowed: (name) => {
      if (!isValidTableName(name)) {
        throw new CseError(
          'InvalidName',
          `"${name.slice(0, 70)}" is not a valid table name (3-63 letters and digits).`,
        );
      }
      if (!isTableAllowed(tables, name)) {
        throw new CseError('TableNotAllowed', `Table "${name}" is not served by this app (CSE_TABLES).`);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

export async function startRotation(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const text = await readSmallBody(
      request,
      START_BODY_LIMIT,
      () => new CseError('InvalidRequest', `The body is larger than ${START_BODY_LIMIT} bytes.`),
    );
    let body: unknown;
    if (text.trim() !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        throw new CseError('InvalidRequest', 'The body must be a JSON object.');
      }
    }
    const { id } = await (await rotationService()).start(parseStartRequest(body));
    context.log(`Rotation ${id} started`);
    return { status: 202, headers: { location: `/api/rotations/${id}` }, jsonBody: { id } };
  } catch (e) {
    if (e instanceof RotationRunningError) {
      return { status: 409, jsonBody: { ...errorBody('RotationRunning', e.message), id: e.runningId } };
    }
    return errorResponse(e, context);
  }
}

export async function getRotation(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const view = await (await rotationService()).get(routeParam(request, 'id'));
    return { status: 200, jsonBody: view };
  } catch (e) {
    return errorResponse(e, context);
  }
}

export async function listRotations(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const topText = request.query.get('top');
    let top = DEFAULT_LIST;
    if (topText !== null) {
      top = Number(topText);
      if (!/^\d+$/.test(topText) || top < 1 || top > MAX_LIST) {
        throw new CseError('InvalidRequest', `top must be an integer from 1 to ${MAX_LIST}.`);
      }
    }
    return { status: 200, jsonBody: { rotations: await (await rotationService()).list(top) } };
  } catch (e) {
    return errorResponse(e, context);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Queues

export async function rotationJob(message: unknown, context: InvocationContext): Promise<void> {
  try {
    context.log(await (await rotationService()).handleJob(message));
  } catch (e) {
    const attempt = context.triggerMetadata?.dequeueCount;
    context.warn(`Rotation job failed (attempt ${String(attempt ?? '?')}), to be retried: ${describe(e)}`);
    throw e;
  }
}

export async function rotationPoison(message: unknown, context: InvocationContext): Promise<void> {
  try {
    context.warn(await (await rotationService()).handlePoison(message));
  } catch (e) {
    context.error(`Rotation poison message not yet accounted for, to be retried: ${describe(e)}`);
    throw e;
  }
}

/** Error text for logs: never key material (CseError messages hold none; other errors are storage/network). */
function describe(e: unknown): string {
  if (e instanceof CseError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

app.http('rotationsStart', { methods: ['POST'], route: 'rotations', authLevel: 'function', handler: startRotation });
app.http('rotationsList', { methods: ['GET'], route: 'rotations', authLevel: 'function', handler: listRotations });
app.http('rotationsGet', { methods: ['GET'], route: 'rotations/{id}', authLevel: 'function', handler: getRotation });
app.storageQueue('rotationJobs', {
  queueName: ROTATION_JOBS_QUEUE,
  connection: 'AzureWebJobsStorage',
  handler: rotationJob,
});
app.storageQueue('rotationJobsPoison', {
  queueName: ROTATION_JOBS_POISON_QUEUE,
  connection: 'AzureWebJobsStorage',
  handler: rotationPoison,
});
