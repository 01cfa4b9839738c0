import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseKeyId, parseVaultHost } from '../../../shared/keys/keyId';

const VERSION = '0123456789abcdef0123456789abcdef';

describe('parseKeyId', () => {
  it('parses versioned and versionless Key Vault and Managed HSM key ids', () => {
    const versioned = parseKeyId(`https://myvault.vault.azure.net/keys/kek-1/${VERSION}`);
    assert.deepEqual(versioned, {
      ok: true,
      keyId: {
        kind: 'keyVault',
        scheme: 'https',
        host: 'myvault.vault.azure.net',
        vaultUrl: 'https://myvault.vault.azure.net',
        name: 'kek-1',
        version: VERSION,
        id: `https://myvault.vault.azure.net/keys/kek-1/${VERSION}`,
      },
    });
    const versionless = parseKeyId('https://myhsm.managedhsm.azure.net/keys/aes');
    assert.ok(versionless.ok && versionless.keyId.kind === 'keyVault');
    assert.equal(versionless.keyId.version, undefined);
    assert.equal(versionless.keyId.id, 'https://myhsm.managedhsm.azure.net/keys/aes');
  });

  it('canonicalises: lower-case scheme and host, no default port, no trailing slash', () => {
    const parsed = parseKeyId(`HTTPS://MyVault.Vault.Azure.NET:443/keys/Kek/${VERSION}/`);
    assert.ok(parsed.ok && parsed.keyId.kind === 'keyVault');
    assert.equal(parsed.keyId.id, `https://myvault.vault.azure.net/keys/Kek/${VERSION}`);
    const port = parseKeyId('https://myvault.vault.azure.net:8443/keys/kek');
    assert.ok(port.ok && port.keyId.kind === 'keyVault');
    assert.equal(port.keyId.host, 'myvault.vault.azure.net:8443');
  });

  it('accepts http only for loopback hosts (a local stand-in)', () => {
    assert.ok(parseKeyId('http://127.0.0.1:4000/keys/kek').ok);
    assert.ok(parseKeyId('http://localhost:4000/keys/kek').ok);
    const remote = parseKeyId('http://myvault.vault.azure.net/keys/kek');
    assert.ok(!remote.ok && /https/.test(remote.reason));
  });

  it('treats anything not URL-shaped as a local kid', () => {
    assert.deepEqual(parseKeyId('local:kek-1'), { ok: true, keyId: { kind: 'local', id: 'local:kek-1' } });
    assert.deepEqual(parseKeyId('my key #2'), { ok: true, keyId: { kind: 'local', id: 'my key #2' } });
  });

  it('refuses malformed ids with a reason', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['https://myvault.vault.azure.net/keys/', /not a Key Vault key id/],
      ['https://myvault.vault.azure.net/keys/kek/v/extra', /not a Key Vault key id/],
      ['https://myvault.vault.azure.net/secrets/kek', /not a Key Vault key id/],
      ['https://user@myvault.vault.azure.net/keys/kek', /not a Key Vault key id/],
      ['https://myvault.vault.azure.net/keys/kek?api-version=1', /not a Key Vault key id/],
      ['https://myvault.vault.azure.net/keys/k%65k', /not a Key Vault key id/],
      ['https://myvault.vault.azure.net/keys/kek/../other', /not a Key Vault key id/],
      ['https://evil.example\\@myvault.vault.azure.net/keys/kek', /not a Key Vault key id/],
      ['https://myvault.vault.azure.net:99999/keys/kek', /port/],
      ['https://myvault.vault.azure.net:0/keys/kek', /port/],
      ['https://-bad-.vault.azure.net/keys/kek', /not a Key Vault key id/],
      [`https://myvault.vault.azure.net/keys/${'k'.repeat(128)}`, /not a Key Vault key id/],
      ['https:myvault.vault.azure.net/keys/kek', /not a Key Vault key id/],
      [' kek', /white space/],
      ['kek\n', /control/],
      ['k'.repeat(257), /at most 256/],
    ];
    for (const [text, reason] of bad) {
      const result = parseKeyId(text);
      assert.ok(!result.ok, `${JSON.stringify(text)} should be refused`);
      assert.match(result.reason, reason, text);
    }
  });

  it('never repeats a huge id in full in the reason', () => {
    const result = parseKeyId(`https://x/${'a'.repeat(10_000)}`);
    assert.ok(!result.ok);
    assert.ok(result.reason.length < 400);
  });
});

describe('parseVaultHost', () => {
  it('normalises hosts', () => {
    assert.deepEqual(parseVaultHost('MyVault.vault.azure.net'), { ok: true, host: 'myvault.vault.azure.net' });
    assert.deepEqual(parseVaultHost('myvault.vault.azure.net:443'), { ok: true, host: 'myvault.vault.azure.net' });
    assert.deepEqual(parseVaultHost('127.0.0.1:8443'), { ok: true, host: '127.0.0.1:8443' });
  });

  it('refuses URLs (with a hint) and junk', () => {
    const url = parseVaultHost('https://myvault.vault.azure.net/');
    assert.ok(!url.ok);
    assert.match(url.reason, /write the host only, e.g. "myvault.vault.azure.net"/);
    for (const bad of ['my vault', 'vault/keys', '*.vault.azure.net', 'a:b:c']) {
      assert.ok(!parseVaultHost(bad).ok, bad);
    }
  });
});
