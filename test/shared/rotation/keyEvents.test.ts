/** Parsing Key Vault events as Event Grid delivers them to the key-events queue. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import { KEY_NEW_VERSION_CREATED, parseKeyVaultEvent } from '../../../shared/rotation/keyEvents';

const VERSION = 'ee059b2bb5bc48398a53b168c6cdcb10';

/** The documented example's shape (MicrosoftDocs event-schema-key-vault.md). */
function event(data: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '00eccf70-95a7-4e7c-8299-2eb17ee9ad64',
    topic:
      '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/sample-kv',
    subject: 'newkey',
    eventType: KEY_NEW_VERSION_CREATED,
    eventTime: '2019-07-25T01:08:33.1036736Z',
    data: {
      Id: `https://sample-kv.vault.azure.net/keys/newkey/${VERSION}`,
      VaultName: 'sample-kv',
      ObjectType: 'Key',
      ObjectName: 'newkey',
      Version: VERSION,
      NBF: '1559081980',
      EXP: '1559082043',
      ...data,
    },
    dataVersion: '1',
    metadataVersion: '1',
    ...top,
  };
}

function malformed(message: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseKeyVaultEvent(message),
    (e: unknown) => isCseError(e, 'InvalidMessage') && pattern.test(e.message),
    JSON.stringify(message)?.slice(0, 200),
  );
}

describe('parseKeyVaultEvent', () => {
  it('reads the versioned key id of a KeyNewVersionCreated event (object, JSON text, one-element array)', () => {
    for (const message of [event(), JSON.stringify(event()), [event()]]) {
      const parsed = parseKeyVaultEvent(message);
      assert.equal(parsed.kind, 'keyNewVersion');
      if (parsed.kind !== 'keyNewVersion') return;
      assert.equal(parsed.keyId.id, `https://sample-kv.vault.azure.net/keys/newkey/${VERSION}`);
      assert.equal(parsed.keyId.host, 'sample-kv.vault.azure.net');
      assert.equal(parsed.keyId.name, 'newkey');
      assert.equal(parsed.keyId.version, VERSION);
      assert.equal(parsed.eventId, '00eccf70-95a7-4e7c-8299-2eb17ee9ad64');
    }
  });

  it('reads CloudEvents and camelCase data members too', () => {
    const cloud = {
      specversion: '1.0',
      type: KEY_NEW_VERSION_CREATED,
      source: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/sample-kv',
      id: 'c1',
      data: {
        id: `https://sample-kv.vault.azure.net/keys/newkey/${VERSION}`,
        vaultName: 'sample-kv',
        objectName: 'newkey',
      },
    };
    const parsed = parseKeyVaultEvent(cloud);
    assert.equal(parsed.kind === 'keyNewVersion' && parsed.keyId.version, VERSION);
  });

  it('passes other event types on as "other" without looking at their data', () => {
    assert.deepEqual(parseKeyVaultEvent(event({}, { eventType: 'Microsoft.KeyVault.KeyNearExpiry', data: 5 })), {
      kind: 'other',
      eventType: 'Microsoft.KeyVault.KeyNearExpiry',
      eventId: '00eccf70-95a7-4e7c-8299-2eb17ee9ad64',
    });
  });

  it('refuses what is not an event, or a KeyNewVersionCreated event whose key id is missing, wrong or contradicted', () => {
    malformed('not json', /not JSON/);
    malformed('[]', /exactly one event/);
    malformed([event(), event()], /exactly one event/);
    malformed(42, /not a JSON object/);
    malformed({ source: { container: 'c', name: 'b' } }, /not an Event Grid event/);
    malformed(event({}, { eventType: '' }), /no event type/);
    malformed(event({}, { data: 'x' }), /no data object/);
    malformed(event({ Id: undefined }), /data\.Id .* is missing/);
    malformed(event({ Id: 42 }), /data\.Id .* is missing/);
    malformed(event({ Id: 'https://sample-kv.vault.azure.net/secrets/newkey/' + VERSION }), /not a Key Vault key id/);
    malformed(event({ Id: 'http://sample-kv.vault.azure.net/keys/newkey/' + VERSION }), /not a Key Vault key id/);
    malformed(event({ Id: 'local:kek-1' }), /not a Key Vault key id/);
    malformed(event({ Id: 'https://sample-kv.vault.azure.net/keys/newkey' }), /names no key version/);
    malformed(event({ ObjectName: 'otherkey' }), /ObjectName .* contradicts data\.Id/);
    malformed(event({ Version: '0123' }), /Version .* contradicts/);
    malformed(event({ VaultName: 'other-kv' }), /VaultName .* contradicts/);
    malformed(event({ ObjectType: 'Secret' }), /ObjectType .* contradicts/);
  });

  it('accepts a loopback stand-in vault (no vault name to compare) and case differences Key Vault ignores', () => {
    const local = parseKeyVaultEvent(
      event({ Id: `http://127.0.0.1:8443/keys/newkey/${VERSION}`, VaultName: 'anything', ObjectName: 'NewKey' }),
    );
    assert.equal(local.kind === 'keyNewVersion' && local.keyId.host, '127.0.0.1:8443');
  });
});
