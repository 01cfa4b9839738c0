/**
 * Rotations that start themselves (shared/rotation/autoRotation.ts; docs/ROTATION.md):
 *
 *   timer       rotationSchedule on `%CSE_ROTATION_SCHEDULE%` (default daily at 03:00 UTC): when nothing is
 *               running and something in scope is under a key other than the current target, start a rotation
 *               to it; otherwise log one line and do nothing.
 *   key-events  rotationKeyEvents: Key Vault's `Microsoft.KeyVault.KeyNewVersionCreated` (Event Grid schema,
 *               delivered by Event Grid to this storage queue as base64 JSON) for the key of a versionless
 *               CSE_KEY_ID starts a rotation to the new version. Other events and keys are logged and ignored;
 *               a malformed message throws, so after maxDequeueCount deliveries it is in `key-events-poison`.
 *
 * Both start rotations with CSE_ROTATION_REENCRYPT_V1. They use the same RotationService as the HTTP API, so
 * the one-rotation-at-a-time lock is shared.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getAppServices, type AppServices } from '../shared/appServices';
import { isTableAllowed, isValidTableName } from '../shared/config/azureNames';
import { CSE_SETTING_DEFAULTS } from '../shared/config/config';
import { CseError } from '../shared/errors';
import {
  describeEventDecision,
  describeScheduleDecision,
  onKeyEvent,
  onSchedule,
  type AutoRotationDeps,
} from '../shared/rotation/autoRotation';
import { KEY_EVENTS_QUEUE } from '../shared/rotation/keyEvents';
import { probeForStaleObjects } from '../shared/rotation/staleProbe';
import { rotationService } from './rotations';

async function autoRotationDeps(): Promise<AutoRotationDeps> {
  const services = await getAppServices();
  return {
    service: await rotationService(),
    keys: services.keyRing,
    probe: (target, options) => probeForStaleObjects(probeDeps(services), target, options),
    reencryptV1: services.config.rotationReencryptV1,
  };
}

function probeDeps(services: AppServices): Parameters<typeof probeForStaleObjects>[0] {
  const { storage, config, keyRing } = services;
  return {
    blobService: services.blobService,
    tableService: storage.table,
    tableClient: storage.tableClient,
    isContainerAllowed: (name) => services.containers.isAllowed(name),
    isTableAllowed: (name) => isValidTableName(name) && isTableAllowed(config.tables, name),
    isKeyAllowed: (keyId) => {
      try {
        keyRing.checkAllowed(keyId);
        return true;
      } catch {
        return false;
      }
    },
  };
}

export async function rotationSchedule(timer: Timer, context: InvocationContext): Promise<void> {
  try {
    context.log(describeScheduleDecision(await onSchedule(await autoRotationDeps())));
  } catch (e) {
    // The next occurrence tries again; a failed run does not stop the schedule.
    context.error(`Scheduled rotation check failed${timer.isPastDue ? ' (past due)' : ''}: ${describe(e)}`);
    throw e;
  }
}

export async function rotationKeyEvent(message: unknown, context: InvocationContext): Promise<void> {
  try {
    context.log(describeEventDecision(await onKeyEvent(await autoRotationDeps(), message)));
  } catch (e) {
    const attempt = context.triggerMetadata?.dequeueCount;
    context.warn(`Key Vault event not handled (attempt ${String(attempt ?? '?')}), to be retried: ${describe(e)}`);
    throw e;
  }
}

/** Never key material: CseError messages hold none; other errors come from Storage or the network. */
function describe(e: unknown): string {
  if (e instanceof CseError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

// The host resolves %CSE_ROTATION_SCHEDULE% from the app settings. In Azure the templates always set it; the local
// host runs the app in its own process and resolves it from this environment, so the documented default applies
// there when the setting is absent (as functions/ingest.ts does for CSE_INGEST_QUEUE).
process.env.CSE_ROTATION_SCHEDULE ||= CSE_SETTING_DEFAULTS.CSE_ROTATION_SCHEDULE;

app.timer('rotationSchedule', { schedule: '%CSE_ROTATION_SCHEDULE%', handler: rotationSchedule });
app.storageQueue('rotationKeyEvents', {
  queueName: KEY_EVENTS_QUEUE,
  connection: 'AzureWebJobsStorage',
  handler: rotationKeyEvent,
});
