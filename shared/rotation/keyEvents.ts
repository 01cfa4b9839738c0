/**
 * Key Vault events on the `key-events` queue: Event Grid delivers each event of the vault's system topic as one
 * base64 JSON message (infra/modules/system-topic-to-queue.bicep), which the queue trigger hands over decoded and
 * parsed. The Event Grid schema (MicrosoftDocs `event-grid/event-schema-key-vault.md`):
 *
 *   { "id", "topic": "/subscriptions/…/providers/Microsoft.KeyVault/vaults/<vault>", "subject": "<key name>",
 *     "eventType": "Microsoft.KeyVault.KeyNewVersionCreated", "eventTime", "dataVersion", "metadataVersion",
 *     "data": { "Id": "https://<vault>.vault.azure.net/keys/<name>/<version>", "VaultName", "ObjectType": "Key",
 *               "ObjectName", "Version", "NBF", "EXP" } }
 *
 * CloudEvents 1.0 (`specversion`, `type`, `data`) carries the same `data` and is read too. `data` member names
 * are matched without regard to case (the SDKs' models spell them camelCase).
 *
 * Parsing decides only what the event says; whether it concerns this app's key is autoRotation.ts's decision.
 * A message that is not an event, or a KeyNewVersionCreated event whose key id is missing, malformed or
 * contradicted by the other members, is malformed: CseError 'InvalidMessage', which the trigger rethrows so the
 * message ends in `key-events-poison` for someone to look at.
 */
import { CseError } from '../errors';
import { parseKeyId, type KeyVaultKeyId } from '../keys/keyId';

export const KEY_EVENTS_QUEUE = 'key-events';
export const KEY_NEW_VERSION_CREATED = 'Microsoft.KeyVault.KeyNewVersionCreated';

export type KeyVaultEvent =
  /** A new version of a key: `keyId` is the versioned id of that version. */
  | { readonly kind: 'keyNewVersion'; readonly keyId: KeyVaultKeyId; readonly eventId: string | undefined }
  /** Any other event type (KeyNearExpiry, SecretNewVersionCreated, ...): nothing to do with rotation. */
  | { readonly kind: 'other'; readonly eventType: string; readonly eventId: string | undefined };

/** Throws CseError 'InvalidMessage' for anything malformed. */
export function parseKeyVaultEvent(message: unknown): KeyVaultEvent {
  const event = eventObject(message);
  const eventType = 'specversion' in event ? event['type'] : event['eventType'];
  if (typeof eventType !== 'string' || eventType === '') throw invalid('the event has no event type');
  const eventId = typeof event['id'] === 'string' ? event['id'] : undefined;
  if (eventType !== KEY_NEW_VERSION_CREATED) return { kind: 'other', eventType, eventId };

  const data = event['data'];
  if (!isObject(data)) throw invalid(`the ${KEY_NEW_VERSION_CREATED} event has no data object`);
  const member = (name: string): unknown => {
    const key = Object.keys(data).find((k) => k.toLowerCase() === name.toLowerCase());
    return key === undefined ? undefined : data[key];
  };
  const idText = member('Id');
  if (typeof idText !== 'string') throw invalid('data.Id (the key version id) is missing');
  const parsed = parseKeyId(idText);
  if (!parsed.ok || parsed.keyId.kind !== 'keyVault') {
    throw invalid(`data.Id is not a Key Vault key id (${parsed.ok ? 'a local key id' : parsed.reason})`);
  }
  const keyId = parsed.keyId;
  if (keyId.version === undefined) throw invalid('data.Id names no key version');
  expectSame('ObjectType', member('ObjectType'), 'Key');
  expectSame('ObjectName', member('ObjectName'), keyId.name);
  expectSame('Version', member('Version'), keyId.version);
  const vaultName = vaultNameOf(keyId.host);
  if (vaultName !== undefined) expectSame('VaultName', member('VaultName'), vaultName);
  return { kind: 'keyNewVersion', keyId, eventId };
}

/** An object, a JSON text of one, or an array holding exactly one (Event Grid's batch form). */
function eventObject(message: unknown): Record<string, unknown> {
  let value = message;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw invalid('the message is not JSON');
    }
  }
  if (Array.isArray(value)) {
    if (value.length !== 1) throw invalid('a JSON array message must hold exactly one event');
    value = value[0];
  }
  if (!isObject(value)) throw invalid('the message is not a JSON object');
  if (!('eventType' in value) && !('specversion' in value)) {
    throw invalid('the message is not an Event Grid event (no eventType)');
  }
  return value;
}

/** A member that is present must agree with the key id (case-insensitively, as Key Vault names are). */
function expectSame(name: string, value: unknown, expected: string): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'string' || value.toLowerCase() !== expected.toLowerCase()) {
    throw invalid(`data.${name} ${JSON.stringify(String(value).slice(0, 100))} contradicts data.Id`);
  }
}

/** `myvault` for `myvault.vault.azure.net`; undefined for an IP or localhost (a local stand-in has no name). */
function vaultNameOf(host: string): string | undefined {
  const name = host.replace(/:\d+$/, '');
  if (name === 'localhost' || /^\d+\.\d+\.\d+\.\d+$/.test(name)) return undefined;
  return name.split('.')[0];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(what: string): CseError {
  return new CseError('InvalidMessage', `not a usable Key Vault event: ${what}`);
}
