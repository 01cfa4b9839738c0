/**
 * The app against a loopback Key Vault stand-in with nothing test-specific injected: the key ring built from
 * settings alone (as appServices builds it) reaches an `http://127.0.0.1:<port>` vault, with its token from the
 * managed identity endpoint (AZURE_CLIENT_ID + IDENTITY_ENDPOINT/IDENTITY_HEADER, as in Azure). The relaxed client
 * options apply to loopback http only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../../shared/config/config';
import { createKeyRing } from '../../../shared/keys/keyRing';
import { loopbackStandInOptions } from '../../../shared/keys/keyVault';
import { KeyVaultStandIn } from '../../helpers/keyVaultStandIn';
import { startManagedIdentityEndpoint } from '../../helpers/managedIdentityEndpoint';

const CLIENT_ID = '7b2e1a6c-0d7e-4f1a-9a55-3c2d1e0f9a8b';

describe('loopbackStandInOptions', () => {
  it('relaxes the SDK checks for loopback http vault URLs only', () => {
    const relaxed = { allowInsecureConnection: true, disableChallengeResourceVerification: true };
    assert.deepEqual(loopbackStandInOptions('http://127.0.0.1:8443'), relaxed);
    assert.deepEqual(loopbackStandInOptions('http://127.0.0.1'), relaxed);
    assert.deepEqual(loopbackStandInOptions('http://localhost:80'), relaxed);
    for (const url of [
      'https://127.0.0.1:8443',
      'https://myvault.vault.azure.net',
      'http://myvault.vault.azure.net',
      'http://10.0.0.1:8443',
      'http://127.0.0.1.evil.example',
      'http://localhost.evil.example:80',
    ]) {
      assert.deepEqual(loopbackStandInOptions(url), {}, url);
    }
  });
});

describe('key ring from settings against a loopback stand-in', () => {
  let kv: KeyVaultStandIn;
  let mi: Awaited<ReturnType<typeof startManagedIdentityEndpoint>>;
  before(async () => {
    kv = await KeyVaultStandIn.start({ acceptToken: (token) => token === 'fake-managed-identity-token' });
    mi = await startManagedIdentityEndpoint();
  });
  after(async () => {
    await mi?.close();
    await kv?.close();
  });

  it('follows a versionless CSE_KEY_ID to its current version, wraps and unwraps, with the managed identity token', async () => {
    const first = kv.createKey('app-kek');
    const config = loadConfig({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      CSE_KEY_ID: kv.keyId('app-kek'),
      AZURE_CLIENT_ID: CLIENT_ID,
    });
    assert.deepEqual(config.allowedKeyVaults, [kv.host]);
    const ring = await createKeyRing(config);
    const active = await ring.activeKey();
    assert.equal(active.keyId, first.kid);

    const cek = randomBytes(32);
    const wrapped = await active.wrapKey('RSA-OAEP', cek);
    const resolved = await ring.resolver.resolve(first.kid);
    assert.deepEqual(await resolved.unwrapKey('RSA-OAEP', wrapped), cek);
    assert.ok(kv.operations('unwrapKey', { status: 200 }).length >= 1, 'the unwrap reached the stand-in');
    assert.ok(mi.requests.length >= 1);
    assert.ok(mi.requests.every((r) => r.clientId === CLIENT_ID && r.headerOk));

    const second = kv.rotateKey('app-kek');
    assert.equal((await ring.activeKey({ refresh: true })).keyId, second.kid, 'a new version becomes the active key');
  });
});
