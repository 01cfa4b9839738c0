/**
 * The key ring's allow-list: stored key ids are untrusted, so anything the configuration does not allow fails
 * with KeyNotAllowed before any network activity (proved with TCP listeners that must see no connection and a
 * credential that must never be asked for a token). Also: start-up checks of the active key, and the active key
 * end to end through the crypto helper's wrap/unwrap.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { createKeyRing, createKeyVaultCredential, type KeyRingConfig } from '../../../shared/keys/keyRing';
import { parseKeyId, type KeyId } from '../../../shared/keys/keyId';
import { parseJwkSet } from '../../../shared/keys/localKeys';
import { unwrapContentKey, wrapContentKey } from '../../../shared/crypto/keyWrapPayload';
import { isCseError } from '../../../shared/errors';
import { KeyVaultStandIn, testCredential } from '../../helpers/keyVaultStandIn';
import { startManagedIdentityEndpoint } from '../../helpers/managedIdentityEndpoint';

const LOCAL_KEYS = parseJwkSet(
  JSON.stringify({
    keys: [
      { kid: 'local-1', kty: 'oct', alg: 'A256KW', k: randomBytes(32).toString('base64url') },
      { kid: 'local-2', kty: 'oct', alg: 'A256KW', k: randomBytes(32).toString('base64url') },
    ],
  }),
  'test keys',
);

function keyId(text: string): KeyId {
  const parsed = parseKeyId(text);
  assert.ok(parsed.ok, text);
  return parsed.keyId;
}

/** A TCP listener standing for a foreign vault: it must never see a connection. */
async function tripwire(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

describe('key ring', () => {
  let kv: KeyVaultStandIn;
  let foreign: Awaited<ReturnType<typeof tripwire>>;
  before(async () => {
    kv = await KeyVaultStandIn.start();
    foreign = await tripwire();
  });
  after(async () => {
    await kv.close();
    await new Promise((resolve) => foreign.server.close(resolve));
  });
  beforeEach(() => kv.clearLog());

  function ring(config: Partial<KeyRingConfig> & Pick<KeyRingConfig, 'keyId'>) {
    const { credential, scopes } = testCredential();
    return {
      scopes,
      ring: createKeyRing(
        { localKeysPath: undefined, allowedKeyVaults: [kv.host], ...config },
        { credential, keyVaultClientOptions: KeyVaultStandIn.clientOptions, localKeys: LOCAL_KEYS },
      ),
    };
  }

  describe('resolver allow-list', () => {
    it('resolves local kids of CSE_LOCAL_KEYS and refuses others', async () => {
      const keys = await ring({ keyId: keyId('local-1') }).ring;
      assert.equal((await keys.resolver.resolve('local-2')).keyId, 'local-2');
      await assert.rejects(
        keys.resolver.resolve('local-3'),
        (e) => isCseError(e, 'KeyNotAllowed') && /CSE_LOCAL_KEYS/.test(e.message),
      );
    });

    it('resolves versioned and versionless keys of an allowed vault', async () => {
      const { kid, version } = kv.createKey('allowed');
      const keys = await ring({ keyId: keyId('local-1') }).ring;
      assert.equal((await keys.resolver.resolve(kid)).keyId, kid);
      assert.equal((await keys.resolver.resolve(kv.keyId('allowed'))).keyId, kv.keyId('allowed', version));
      // Host case and an explicit default port do not matter; the KEK id is canonical.
      const upper = kid.replace('http://', 'HTTP://');
      assert.equal((await keys.resolver.resolve(upper)).keyId, kid);
    });

    it('never contacts or sends a token to a vault that is not allowed', async () => {
      const before = foreign.connections();
      const { ring: pending, scopes } = ring({ keyId: keyId('local-1') });
      const keys = await pending;
      const ids = [
        `http://127.0.0.1:${foreign.port}/keys/kek/${'a'.repeat(32)}`,
        `http://127.0.0.1:${foreign.port}/keys/kek`,
        `http://localhost:${foreign.port}/keys/kek`,
        `https://evil.vault.azure.net/keys/kek/${'b'.repeat(32)}`,
        `https://${kv.host}.evil.example/keys/kek`,
        // A look-alike of the allowed host with other ports or user info must not pass as it.
        `http://${kv.host}@127.0.0.1:${foreign.port}/keys/kek`,
        `http://127.0.0.1:${foreign.port}/keys/kek?vault=${kv.host}`,
        `http://127.0.0.1:${foreign.port}\\@${kv.host}/keys/kek`,
      ];
      for (const id of ids) {
        await assert.rejects(keys.resolver.resolve(id), (e) => isCseError(e, 'KeyNotAllowed'), id);
      }
      // Give any stray connection attempt time to arrive before counting.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(foreign.connections(), before, 'the foreign listener saw no connection');
      assert.deepEqual(scopes, [], 'no token was requested');
      assert.equal(kv.requests.length, 0, 'the allowed vault was not contacted either');
    });

    it('a Key Vault id is not allowed when no vault is configured', async () => {
      const { kid } = kv.createKey('unlisted');
      const keys = await ring({ keyId: keyId('local-1'), allowedKeyVaults: [] }).ring;
      await assert.rejects(
        keys.resolver.resolve(kid),
        (e) => isCseError(e, 'KeyNotAllowed') && /CSE_ALLOWED_KEY_VAULTS/.test(e.message),
      );
      assert.equal(kv.requests.length, 0);
    });

    it('malformed ids fail with KeyNotAllowed saying what is wrong', async () => {
      const keys = await ring({ keyId: keyId('local-1') }).ring;
      const cases: [string, RegExp][] = [
        ['', /empty/],
        [`https://${kv.host}/secrets/kek`, /not a Key Vault key id/],
        [`https://${kv.host}/keys/kek/v1/extra`, /not a Key Vault key id/],
        [`https://${kv.host}/keys/kek%2F..%2Fother`, /not a Key Vault key id/],
        [`https://${kv.host}/keys/kek#frag`, /not a Key Vault key id/],
        [`ftp://${kv.host}/keys/kek`, /not a Key Vault key id/],
        ['http://vault.example.net/keys/kek', /https/],
        ['https://[::1]/keys/kek', /not a Key Vault key id/],
        [' local-1', /white space/],
        ['local\u0000', /control/],
        ['x'.repeat(300), /at most/],
      ];
      for (const [id, reason] of cases) {
        await assert.rejects(
          keys.resolver.resolve(id),
          (e) => isCseError(e, 'KeyNotAllowed') && reason.test(e.message),
          id,
        );
      }
      assert.equal(kv.requests.length, 0);
    });

    it('checkAllowed parses without resolving', async () => {
      const keys = await ring({ keyId: keyId('local-1') }).ring;
      const id = keys.checkAllowed(`${kv.url}/keys/some-key`);
      assert.equal(id.kind, 'keyVault');
      assert.throws(
        () => keys.checkAllowed('https://other.vault.azure.net/keys/k'),
        (e) => isCseError(e, 'KeyNotAllowed'),
      );
      assert.equal(kv.requests.length, 0);
    });
  });

  describe('start-up', () => {
    it('fails when the active Key Vault key is not in an allowed vault', async () => {
      await assert.rejects(
        ring({ keyId: keyId('https://other.vault.azure.net/keys/kek'), allowedKeyVaults: [kv.host] }).ring,
        (e) =>
          isCseError(e, 'ConfigurationError') &&
          /CSE_KEY_ID/.test(e.message) &&
          /CSE_ALLOWED_KEY_VAULTS/.test(e.message),
      );
    });

    it('fails when the active local kid is not in the key file, or there is no key file', async () => {
      await assert.rejects(
        ring({ keyId: keyId('local-9') }).ring,
        (e) => isCseError(e, 'ConfigurationError') && /local-9/.test(e.message),
      );
      await assert.rejects(
        createKeyRing({ keyId: keyId('local-1'), localKeysPath: undefined, allowedKeyVaults: [] }),
        (e) => isCseError(e, 'ConfigurationError') && /CSE_LOCAL_KEYS/.test(e.message),
      );
    });

    it('does not contact Key Vault at start-up', async () => {
      kv.createKey('lazy');
      await ring({ keyId: keyId(kv.keyId('lazy')) }).ring;
      assert.equal(kv.requests.length, 0);
    });
  });

  describe('active key', () => {
    it('a versionless CSE_KEY_ID gives the current version; what gets stored is the versioned id', async () => {
      const { kid } = kv.createKey('active');
      const keys = await ring({ keyId: keyId(kv.keyId('active')) }).ring;
      const kek = await keys.activeKey();
      assert.equal(kek.keyId, kid);
      const cek = randomBytes(32);
      const wrapped = await wrapContentKey(kek, cek, '2.0');
      assert.equal(wrapped.keyId, kid);
      assert.equal(wrapped.algorithm, 'RSA-OAEP-256');
      assert.equal(kv.operations('wrapKey').length, 0);
      // unwrapContentKey zeroes what the KEK returns; a second read must still work (cache holds a copy).
      assert.deepEqual(await unwrapContentKey(keys.resolver, wrapped, '2.0'), cek);
      assert.deepEqual(await unwrapContentKey(keys.resolver, wrapped, '2.0'), cek);
      assert.equal(kv.operations('unwrapKey').length, 1);
    });

    it('refresh picks up a rotation; the old version still reads', async () => {
      const { kid: v1 } = kv.createKey('rotated');
      const keys = await ring({ keyId: keyId(kv.keyId('rotated')) }).ring;
      const cek = randomBytes(32);
      const wrapped = await wrapContentKey(await keys.activeKey(), cek, '2.0');
      const { kid: v2 } = kv.rotateKey('rotated');
      assert.equal((await keys.activeKey()).keyId, v1);
      assert.equal((await keys.activeKey({ refresh: true })).keyId, v2);
      assert.deepEqual(await unwrapContentKey(keys.resolver, wrapped, '2.0'), cek);
    });

    it('a disabled or expired active key is reported before anything is written', async () => {
      const { version } = kv.createKey('dead');
      const keys = await ring({ keyId: keyId(kv.keyId('dead')) }).ring;
      kv.setAttributes('dead', version, { enabled: false });
      await assert.rejects(keys.activeKey(), (e) => isCseError(e, 'InvalidKey') && /disabled/.test(e.message));
    });

    it('a local active key', async () => {
      const keys = await ring({ keyId: keyId('local-2') }).ring;
      const kek = await keys.activeKey();
      assert.equal(kek.keyId, 'local-2');
      assert.equal(kek.defaultAlgorithm, 'A256KW');
    });

    it('keyForWriting: an explicit allowed target (rotation), refused if not allowed', async () => {
      const { kid } = kv.createKey('target');
      const keys = await ring({ keyId: keyId('local-1') }).ring;
      assert.equal((await keys.keyForWriting(kv.keyId('target'))).keyId, kid);
      assert.equal((await keys.keyForWriting('local-2')).keyId, 'local-2');
      await assert.rejects(keys.keyForWriting('https://other.vault.azure.net/keys/k'), (e) =>
        isCseError(e, 'KeyNotAllowed'),
      );
    });
  });

  describe('Key Vault credential', () => {
    const clientId = '8f0e6c1e-2b2c-4e5c-9a47-3c1d2e6f7a8b';

    it('DefaultAzureCredential without AZURE_CLIENT_ID, the managed identity it names otherwise', () => {
      assert.ok(createKeyVaultCredential(undefined) instanceof DefaultAzureCredential);
      assert.ok(createKeyVaultCredential(clientId) instanceof ManagedIdentityCredential);
    });

    it('end to end: the token of the AZURE_CLIENT_ID identity reaches the vault', async () => {
      const mi = await startManagedIdentityEndpoint();
      const vault = await KeyVaultStandIn.start({ acceptToken: (t) => t === 'fake-managed-identity-token' });
      try {
        const { kid } = vault.createKey('mi');
        const keys = await createKeyRing(
          {
            keyId: keyId(vault.keyId('mi')),
            localKeysPath: undefined,
            allowedKeyVaults: [vault.host],
            azureClientId: clientId,
          },
          { keyVaultClientOptions: KeyVaultStandIn.clientOptions },
        );
        assert.equal((await keys.activeKey()).keyId, kid);
        assert.ok(mi.requests.some((r) => r.clientId === clientId && r.resource === 'https://vault.azure.net'));
      } finally {
        await vault.close();
        await mi.close();
      }
    });
  });
});
