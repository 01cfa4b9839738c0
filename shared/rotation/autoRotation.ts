/**
 * Rotations the app starts by itself, so that operators need not remember to rotate:
 *
 *   onSchedule   the CSE_ROTATION_SCHEDULE timer. A rotation is running: nothing. Otherwise the target is fixed
 *                (CSE_KEY_ID; for a versionless Key Vault id its current version, looked up now) and the scope is
 *                checked (staleProbe.ts): something under another key starts a rotation to the target; all
 *                current does nothing. Either way one log line says what was decided.
 *   onKeyEvent   a Key Vault event from the `key-events` queue. Only `KeyNewVersionCreated` for the vault and
 *                key of a versionless CSE_KEY_ID starts a rotation, to the version the event names, and only
 *                while that version is the key's current one (an event for a version that was superseded
 *                meanwhile is left to the newer version's event or to the schedule). With a versioned
 *                CSE_KEY_ID the configuration pins a version: events are logged and ignored, so the timer and
 *                the events never fight over the target. Events for other keys or vaults are ignored.
 *
 * Both use CSE_ROTATION_REENCRYPT_V1 for the rotations they start. A start that finds a rotation running (409)
 * starts nothing: the running one is reported, and the schedule catches up afterwards.
 */
import type { KeyEncryptionKey } from '../keys/kek';
import type { KeyId } from '../keys/keyId';
import { parseKeyVaultEvent } from './keyEvents';
import { RotationRunningError, type StartRotationRequest } from './rotationService';
import type { ProbeResult } from './staleProbe';
import type { RotationView } from './types';

/** What the decisions need from RotationService and the key ring (injected, for tests). */
export interface AutoRotationDeps {
  readonly service: {
    start(request: StartRotationRequest): Promise<{ id: string }>;
    list(top?: number): Promise<RotationView[]>;
  };
  readonly keys: {
    /** CSE_KEY_ID as configured. */
    readonly activeKeyId: KeyId;
    activeKey(options?: { refresh?: boolean }): Promise<KeyEncryptionKey>;
  };
  /** staleProbe.ts `probeForStaleObjects` bound to the app's storage and allow-lists. */
  readonly probe: (targetKeyId: string, options: { reencryptV1: boolean }) => Promise<ProbeResult>;
  /** CSE_ROTATION_REENCRYPT_V1. */
  readonly reencryptV1: boolean;
}

export type ScheduleDecision =
  | { readonly kind: 'running'; readonly id: string; readonly targetKeyId: string }
  | { readonly kind: 'allCurrent'; readonly targetKeyId: string; readonly scanned: number }
  | { readonly kind: 'started'; readonly id: string; readonly targetKeyId: string; readonly because: string };

export type EventDecision =
  | { readonly kind: 'ignored'; readonly why: string }
  | { readonly kind: 'running'; readonly id: string; readonly why: string }
  | { readonly kind: 'started'; readonly id: string; readonly targetKeyId: string };

export async function onSchedule(deps: AutoRotationDeps): Promise<ScheduleDecision> {
  const running = await runningRotation(deps);
  if (running !== undefined) return { kind: 'running', id: running.id, targetKeyId: running.targetKeyId };
  const target = (await deps.keys.activeKey({ refresh: true })).keyId;
  const probe = await deps.probe(target, { reencryptV1: deps.reencryptV1 });
  if (probe.kind === 'allCurrent') return { kind: 'allCurrent', targetKeyId: target, scanned: probe.scanned };
  const because =
    probe.kind === 'found'
      ? probe.keyId === target
        ? `${probe.object} is v1.0 (re-encryption is on)`
        : `${probe.object} is under ${probe.keyId}`
      : `the check listed ${probe.scanned} objects within its time budget without finishing; the rotation's sweep decides`;
  try {
    const { id } = await deps.service.start({ targetKeyId: target, ...reencrypt(deps) });
    return { kind: 'started', id, targetKeyId: target, because };
  } catch (e) {
    if (e instanceof RotationRunningError) return { kind: 'running', id: e.runningId, targetKeyId: '' };
    throw e;
  }
}

/** The one log line of a timer run. */
export function describeScheduleDecision(d: ScheduleDecision): string {
  switch (d.kind) {
    case 'running':
      return `Scheduled rotation check: rotation ${d.id} is running${d.targetKeyId === '' ? '' : ` (to ${d.targetKeyId})`}; nothing started`;
    case 'allCurrent':
      return `Scheduled rotation check: all ${d.scanned} encrypted objects are under ${d.targetKeyId}; nothing to rotate`;
    case 'started':
      return `Scheduled rotation check: started rotation ${d.id} to ${d.targetKeyId}, because ${d.because}`;
  }
}

/** Throws CseError 'InvalidMessage' for a malformed event (the trigger rethrows it: poison queue). */
export async function onKeyEvent(deps: AutoRotationDeps, message: unknown): Promise<EventDecision> {
  const event = parseKeyVaultEvent(message);
  if (event.kind === 'other') return { kind: 'ignored', why: `event type ${event.eventType} does not start rotations` };
  const versionId = event.keyId.id;
  const configured = deps.keys.activeKeyId;
  if (configured.kind !== 'keyVault') {
    return { kind: 'ignored', why: `new version ${versionId}: CSE_KEY_ID is a local key` };
  }
  if (configured.host !== event.keyId.host || configured.name.toLowerCase() !== event.keyId.name.toLowerCase()) {
    return { kind: 'ignored', why: `new version ${versionId} is not of CSE_KEY_ID's key (${configured.id})` };
  }
  if (configured.version !== undefined) {
    return {
      kind: 'ignored',
      why: `new version ${versionId}: CSE_KEY_ID pins version ${configured.version}, so key events do not start rotations`,
    };
  }
  const current = (await deps.keys.activeKey({ refresh: true })).keyId;
  if (current.toLowerCase() !== versionId.toLowerCase()) {
    return { kind: 'ignored', why: `new version ${versionId} is no longer the current version (${current})` };
  }
  try {
    const { id } = await deps.service.start({ targetKeyId: current, ...reencrypt(deps) });
    return { kind: 'started', id, targetKeyId: current };
  } catch (e) {
    if (!(e instanceof RotationRunningError)) throw e;
    const running = await runningRotation(deps);
    const same = running?.targetKeyId === current;
    return {
      kind: 'running',
      id: e.runningId,
      why: same
        ? `rotation ${e.runningId} is already rotating to ${current}`
        : `rotation ${e.runningId} is running; the schedule starts the rotation to ${current} after it`,
    };
  }
}

export function describeEventDecision(d: EventDecision): string {
  switch (d.kind) {
    case 'ignored':
      return `Key Vault event ignored: ${d.why}`;
    case 'running':
      return `Key Vault event: nothing started, ${d.why}`;
    case 'started':
      return `Key Vault event: started rotation ${d.id} to ${d.targetKeyId}`;
  }
}

/** Rotations run one at a time and ids sort newest first, so only the newest can be running. */
async function runningRotation(deps: AutoRotationDeps): Promise<RotationView | undefined> {
  const [newest] = await deps.service.list(1);
  return newest?.status === 'running' ? newest : undefined;
}

function reencrypt(deps: AutoRotationDeps): Pick<StartRotationRequest, 'reencryptV1'> {
  return deps.reencryptV1 ? { reencryptV1: true } : {};
}
