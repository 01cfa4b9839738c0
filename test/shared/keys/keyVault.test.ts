/**
 * Key Vault KEKs with the real @azure/keyvault-keys clients against the in-repo stand-in (ECOSYSTEM.md §4.2):
 * challenge authentication, local wraps, one unwrap per (key, wrapped key), key material fetched once per
 * version, expired and disabled versions, 429 back-off, Managed HSM AES keys.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import { KeyVaultKeys } from '../../../shared/keys/keyVault';
import { UnwrappedKeyCache } from '../../../shared/keys/cekCache';
import { parseKeyId, type KeyVaultKeyId } from '../../../shared/keys/keyId';
import { isCseError } from '../../../shared/errors';
import { KeyVaultStandIn, testCredential } from '../../helpers/keyVaultStandIn';

function vaultId(text: string): KeyVaultKeyId {
  const parsed = parseKeyId(text);
  assert.ok(parsed.ok && parsed.keyId.kind === 'keyVault', text);
  return parsed.keyId;
}

/** A manual clock for TTLs. */
function clock(start = Date.now()): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('Key Vault keys (real SDK, stand-in vault)', () => {
  let kv: KeyVaultStandIn;
  before(async () => {
    kv = await KeyVaultStandIn.start();
  });
  after(() => kv.close());
  beforeEach(() => {
    kv.clearLog();
    kv.clearThrottle();
  });

  function keyVaultKeys(options: Partial<ConstructorParameters<typeof KeyVaultKeys>[0]> = {}) {
    const { credential, scopes } = testCredential();
    const keys = new KeyVaultKeys({
      credential,
      clientOptions: KeyVaultStandIn.clientOptions,
      cekCache: new UnwrappedKeyCache(),
      ...options,
    });
    return { keys, scopes };
  }

  it('the stand-in speaks the protocol the SDK expects: challenge, then token for the challenged resource', async () => {
    const { credential, scopes } = testCredential();
    const client = new KeyClient(kv.url, credential, KeyVaultStandIn.clientOptions);
    const created = await client.createKey('sdk-made', 'RSA', { keySize: 2048, keyOps: ['wrapKey', 'unwrapKey'] });
    const [challenge, real] = kv.requests;
    assert.equal(challenge?.operation, 'createKey');
    assert.equal(challenge?.authorized, false);
    assert.equal(challenge?.bodyLength, 0, 'the first request is sent without its body');
    assert.equal(challenge?.status, 401);
    assert.equal(real?.authorized, true);
    assert.ok((real?.bodyLength ?? 0) > 0);
    assert.equal(real?.status, 200);
    assert.deepEqual(scopes, [['https://vault.azure.net/.default']]);
    assert.match(created.id ?? '', new RegExp(`^${kv.url}/keys/sdk-made/[0-9a-f]{32}$`));

    await client.rotateKey('sdk-made');
    const versions: string[] = [];
    for await (const p of client.listPropertiesOfKeyVersions('sdk-made')) versions.push(p.version ?? '');
    assert.equal(versions.length, 2);
    assert.equal((await client.getKey('sdk-made')).properties.version, kv.currentVersion('sdk-made'));
  });

  it('lists many versions across pages (nextLink)', async () => {
    for (let i = 0; i < 30; i++) kv.createKey('paged', { kty: 'oct-HSM' });
    const client = new KeyClient(kv.url, testCredential().credential, KeyVaultStandIn.clientOptions);
    let count = 0;
    for await (const _ of client.listPropertiesOfKeyVersions('paged')) count++;
    assert.equal(count, 30);
    assert.ok(kv.operations('listVersions', { status: 200 }).length >= 2, 'more than one page');
  });

  it('a versionless id resolves to the current version; the KEK id is versioned', async () => {
    const { kid } = kv.createKey('current');
    const { keys } = keyVaultKeys();
    const kek = await keys.key(vaultId(kv.keyId('current')));
    assert.equal(kek.keyId, kid);
    assert.equal(kek.defaultAlgorithm, 'RSA-OAEP-256');
  });

  for (const algorithm of ['RSA-OAEP', 'RSA-OAEP-256'] as const) {
    it(`wraps ${algorithm} locally (no wrapkey call) in a form Key Vault unwraps`, async () => {
      const { kid } = kv.createKey(`local-${algorithm}`);
      const { keys } = keyVaultKeys();
      const kek = await keys.key(vaultId(kid));
      const payload = randomBytes(40);
      const wrapped = [];
      for (let i = 0; i < 5; i++) wrapped.push(await kek.wrapKey(algorithm, payload));
      assert.equal(kv.operations('wrapKey').length, 0, 'uploads cost no Key Vault call');
      assert.equal(kv.operations('getKey', { status: 200 }).length, 1, 'key material fetched once');
      // OAEP is randomised: every wrap differs, and each unwraps (in the vault) to the payload.
      assert.equal(new Set(wrapped.map((w) => w.toString('hex'))).size, 5);
      const sdk = new CryptographyClient(kid, testCredential().credential, KeyVaultStandIn.clientOptions);
      for (const w of wrapped) assert.deepEqual(Buffer.from((await sdk.unwrapKey(algorithm, w)).result), payload);
    });
  }

  it('unwraps in the vault once per (key, wrapped key); a different wrapped key costs another unwrap', async () => {
    const { kid } = kv.createKey('cached');
    const { keys } = keyVaultKeys();
    const kek = await keys.key(vaultId(kid));
    const payload = randomBytes(40);
    const wrapped = await kek.wrapKey('RSA-OAEP-256', payload);
    const first = await kek.unwrapKey('RSA-OAEP-256', wrapped);
    first.fill(0); // callers zero what they get; the cache must hold its own copy
    const second = await (await keys.key(vaultId(kid))).unwrapKey('RSA-OAEP-256', wrapped);
    assert.deepEqual(second, payload);
    assert.equal(kv.operations('unwrapKey', { status: 200 }).length, 1);
    const other = await kek.wrapKey('RSA-OAEP-256', payload);
    assert.deepEqual(await kek.unwrapKey('RSA-OAEP-256', other), payload);
    assert.equal(kv.operations('unwrapKey', { status: 200 }).length, 2);
    const body = kv.operations('unwrapKey', { status: 200 })[0];
    assert.equal(body?.algorithm, 'RSA-OAEP-256');
  });

  it('concurrent reads of the same blob share one unwrap', async () => {
    const { kid } = kv.createKey('concurrent');
    const { keys } = keyVaultKeys();
    const kek = await keys.key(vaultId(kid));
    const payload = randomBytes(40);
    const wrapped = await kek.wrapKey('RSA-OAEP', payload);
    const results = await Promise.all(Array.from({ length: 8 }, () => kek.unwrapKey('RSA-OAEP', wrapped)));
    for (const r of results) assert.deepEqual(r, payload);
    assert.equal(kv.operations('unwrapKey').length, 1);
  });

  it('bounds the CEK cache in size and in time', async () => {
    const { kid } = kv.createKey('bounded');
    const time = clock();
    const { keys } = keyVaultKeys({ cekCache: new UnwrappedKeyCache({ maxEntries: 2, ttlMs: 60_000, now: time.now }) });
    const kek = await keys.key(vaultId(kid));
    const payloads = [randomBytes(40), randomBytes(40), randomBytes(40)];
    const wrapped = await Promise.all(payloads.map((p) => kek.wrapKey('RSA-OAEP-256', p)));
    const unwrap = (i: number) => kek.unwrapKey('RSA-OAEP-256', wrapped[i] as Buffer);
    await unwrap(0);
    await unwrap(1);
    await unwrap(1);
    assert.equal(kv.operations('unwrapKey').length, 2);
    await unwrap(2); // evicts 0, the least recently used
    await unwrap(1);
    assert.equal(kv.operations('unwrapKey').length, 3);
    assert.deepEqual(await unwrap(0), payloads[0]);
    assert.equal(kv.operations('unwrapKey').length, 4, 'the evicted entry costs a new unwrap');
    time.advance(60_001);
    assert.deepEqual(await unwrap(0), payloads[0]);
    assert.equal(kv.operations('unwrapKey').length, 5, 'an expired entry costs a new unwrap');
  });

  it('fetches key material once per version, again after its lifetime, and sees attribute changes then', async () => {
    const { kid, version } = kv.createKey('ttl');
    const time = clock();
    const { keys } = keyVaultKeys({ keyMaterialTtlMs: 5 * 60_000, now: time.now });
    const kek = await keys.key(vaultId(kid));
    await kek.wrapKey('RSA-OAEP-256', randomBytes(40));
    await (await keys.key(vaultId(kid))).wrapKey('RSA-OAEP-256', randomBytes(40));
    assert.equal(kv.operations('getKey', { status: 200 }).length, 1);
    kv.setAttributes('ttl', version, { enabled: false });
    await kek.wrapKey('RSA-OAEP-256', randomBytes(40)); // still within the lifetime: not yet seen
    time.advance(5 * 60_000);
    await assert.rejects(
      kek.wrapKey('RSA-OAEP-256', randomBytes(40)),
      (e) => isCseError(e, 'InvalidKey') && /disabled/.test(e.message),
    );
    assert.equal(kv.operations('getKey', { status: 200 }).length, 2);
  });

  it('a versionless id follows rotation after its lifetime or on refresh; old versions keep unwrapping', async () => {
    const { kid: v1 } = kv.createKey('rotating');
    const time = clock();
    const { keys } = keyVaultKeys({ currentVersionTtlMs: 30_000, now: time.now });
    const id = vaultId(kv.keyId('rotating'));
    const old = await keys.key(id);
    assert.equal(old.keyId, v1);
    const payload = randomBytes(40);
    const wrapped = await old.wrapKey('RSA-OAEP-256', payload);
    const { kid: v2 } = kv.rotateKey('rotating');
    assert.equal((await keys.key(id)).keyId, v1, 'cached current version');
    assert.equal((await keys.key(id, { refresh: true })).keyId, v2);
    time.advance(30_000);
    assert.equal((await keys.key(id)).keyId, v2);
    assert.deepEqual(await (await keys.key(vaultId(v1))).unwrapKey('RSA-OAEP-256', wrapped), payload);
  });

  it('unwraps with an expired but enabled version, which the plain SDK refuses client-side', async () => {
    const { kid, version } = kv.createKey('expired');
    const { keys } = keyVaultKeys();
    const payload = randomBytes(40);
    const wrapped = await (await keys.key(vaultId(kid))).wrapKey('RSA-OAEP-256', payload);
    kv.setAttributes('expired', version, { expiresOn: new Date(Date.now() - 60_000) });

    // Why the bypass exists: CryptographyClient's ensureValid throws before sending anything.
    kv.clearLog();
    const plain = new CryptographyClient(kid, testCredential().credential, KeyVaultStandIn.clientOptions);
    await assert.rejects(plain.unwrapKey('RSA-OAEP-256', wrapped), /expired/);
    assert.equal(kv.operations('unwrapKey').length, 0);

    const fresh = keyVaultKeys().keys; // a new process: fetches the (now expired) key material
    const kek = await fresh.key(vaultId(kid));
    assert.ok(kek.properties.expiresOn !== undefined && kek.properties.expiresOn.getTime() < Date.now());
    assert.deepEqual(await kek.unwrapKey('RSA-OAEP-256', wrapped), payload);
    assert.equal(kv.operations('unwrapKey', { status: 200 }).length, 1);
    // ...but it never wraps new content keys.
    await assert.rejects(
      kek.wrapKey('RSA-OAEP-256', payload),
      (e) => isCseError(e, 'InvalidKey') && /expired/.test(e.message),
    );
    await assert.rejects(kek.assertCanWrap(), (e) => isCseError(e, 'InvalidKey'));
    assert.equal(kv.operations('wrapKey').length, 0);
  });

  it('a version that is not yet valid, or lacks wrapKey in key_ops, does not wrap', async () => {
    const { kid: future } = kv.createKey('future', { notBefore: new Date(Date.now() + 3600_000) });
    const { kid: unwrapOnly } = kv.createKey('unwrap-only', { keyOps: ['unwrapKey'] });
    const { keys } = keyVaultKeys();
    await assert.rejects((await keys.key(vaultId(future))).wrapKey('RSA-OAEP', randomBytes(40)), /not valid before/);
    await assert.rejects((await keys.key(vaultId(unwrapOnly))).wrapKey('RSA-OAEP', randomBytes(40)), /wrapKey/);
  });

  it('a disabled version fails to unwrap with KeyUnavailable (the vault decides)', async () => {
    const { kid, version } = kv.createKey('disabled');
    const { keys } = keyVaultKeys();
    const kek = await keys.key(vaultId(kid));
    const wrapped = await kek.wrapKey('RSA-OAEP-256', randomBytes(40));
    kv.setAttributes('disabled', version, { enabled: false });
    await assert.rejects(
      kek.unwrapKey('RSA-OAEP-256', wrapped),
      (e) => isCseError(e, 'KeyUnavailable') && /disabled/.test(e.message),
    );
  });

  it('maps vault errors: unknown version -> KeyNotFound, wrong key -> IntegrityCheckFailed, wrong algorithm -> UnsupportedAlgorithm', async () => {
    const { kid } = kv.createKey('errors');
    const { kid: otherKid } = kv.createKey('errors-other');
    const { keys } = keyVaultKeys();
    await assert.rejects(keys.key(vaultId(`${kv.keyId('errors')}/${'0'.repeat(32)}`)), (e) =>
      isCseError(e, 'KeyNotFound'),
    );
    await assert.rejects(keys.key(vaultId(kv.keyId('no-such-key'))), (e) => isCseError(e, 'KeyNotFound'));
    const kek = await keys.key(vaultId(kid));
    const other = await keys.key(vaultId(otherKid));
    const wrapped = await other.wrapKey('RSA-OAEP-256', randomBytes(40));
    await assert.rejects(kek.unwrapKey('RSA-OAEP-256', wrapped), (e) => isCseError(e, 'IntegrityCheckFailed'));
    await assert.rejects(kek.unwrapKey('RSA-OAEP', wrapped), (e) => isCseError(e, 'IntegrityCheckFailed'));
    const before = kv.requests.length;
    await assert.rejects(kek.unwrapKey('A256KW', wrapped), (e) => isCseError(e, 'UnsupportedAlgorithm'));
    assert.equal(kv.requests.length, before, 'refused without a call');
  });

  it('remembers for a while that a key or version does not exist (stored ids are untrusted)', async () => {
    kv.createKey('sparse');
    const time = clock();
    const { keys } = keyVaultKeys({ notFoundTtlMs: 60_000, now: time.now });
    const missing = vaultId(`${kv.keyId('sparse')}/${'f'.repeat(32)}`);
    for (let i = 0; i < 3; i++) await assert.rejects(keys.key(missing), (e) => isCseError(e, 'KeyNotFound'));
    assert.equal(kv.operations('getKey').length, 1);
    time.advance(60_000);
    await assert.rejects(keys.key(missing), (e) => isCseError(e, 'KeyNotFound'));
    assert.equal(kv.operations('getKey').length, 2);
  });

  it('refuses key types that cannot wrap', async () => {
    const { kid } = kv.createKey('ec', { kty: 'EC' });
    await assert.rejects(
      keyVaultKeys().keys.key(vaultId(kid)),
      (e) => isCseError(e, 'InvalidKey') && /EC/.test(e.message),
    );
  });

  it('Managed HSM AES keys: A256KW wraps and unwraps in the HSM', async () => {
    const hsm = await KeyVaultStandIn.start({ resource: 'https://managedhsm.azure.net' });
    try {
      const { kid } = hsm.createKey('aes', { kty: 'oct-HSM' });
      const { keys, scopes } = keyVaultKeys();
      const kek = await keys.key(vaultId(kid));
      assert.equal(kek.defaultAlgorithm, 'A256KW');
      const payload = randomBytes(40);
      const wrapped = await kek.wrapKey('A256KW', payload);
      assert.equal(wrapped.length, 48);
      assert.equal(hsm.operations('wrapKey', { status: 200 }).length, 1);
      assert.deepEqual(await kek.unwrapKey('A256KW', wrapped), payload);
      await assert.rejects(kek.wrapKey('RSA-OAEP', payload), (e) => isCseError(e, 'UnsupportedAlgorithm'));
      assert.ok(scopes.some((s) => s[0] === 'https://managedhsm.azure.net/.default'));
    } finally {
      await hsm.close();
    }
  });

  describe('throttling (429 + Retry-After)', () => {
    /** Fake timer: records waits, advances a clock, returns at once. */
    function fakeTimer() {
      const time = clock();
      const waits: number[] = [];
      return {
        waits,
        now: time.now,
        sleep: async (ms: number) => {
          waits.push(ms);
          time.advance(ms);
        },
      };
    }

    it('waits Retry-After (real seconds) and succeeds', async () => {
      const { kid } = kv.createKey('slow');
      const { keys } = keyVaultKeys();
      const kek = await keys.key(vaultId(kid));
      const wrapped = await kek.wrapKey('RSA-OAEP-256', randomBytes(40));
      kv.clearLog();
      kv.throttle({ requests: 1, retryAfterSeconds: 1, operations: ['unwrapKey'] });
      const started = Date.now();
      await kek.unwrapKey('RSA-OAEP-256', wrapped);
      const elapsed = Date.now() - started;
      const attempts = kv.operations('unwrapKey');
      assert.deepEqual(
        attempts.map((r) => r.status),
        [429, 200],
      );
      assert.ok(elapsed >= 950, `waited ${elapsed} ms`);
      assert.ok((attempts[1]?.at ?? 0) - (attempts[0]?.at ?? 0) >= 950);
    });

    it('gives up after the retry budget with KeyUnavailable and retryAfterSeconds', async () => {
      const { kid } = kv.createKey('storm');
      const timer = fakeTimer();
      const { keys } = keyVaultKeys({ throttle: { maxRetries: 2, sleep: timer.sleep, now: timer.now } });
      const kek = await keys.key(vaultId(kid));
      const wrapped = await kek.wrapKey('RSA-OAEP-256', randomBytes(40));
      kv.clearLog();
      kv.throttle({ retryAfterSeconds: 7 });
      await assert.rejects(kek.unwrapKey('RSA-OAEP-256', wrapped), (e) => {
        assert.ok(isCseError(e, 'KeyUnavailable'));
        assert.equal(e.retryAfterSeconds, 7);
        assert.match(e.message, /throttl/);
        return true;
      });
      assert.equal(kv.operations('unwrapKey', { status: 429 }).length, 3, 'first attempt + 2 retries');
      assert.deepEqual(timer.waits, [7000, 7000]);
      kv.clearThrottle();
    });

    it('fails at once when Retry-After exceeds the wait budget, and the whole vault waits', async () => {
      const { kid } = kv.createKey('long-wait');
      const { kid: otherKid } = kv.createKey('long-wait-2');
      const timer = fakeTimer();
      const { keys } = keyVaultKeys({ throttle: { maxWaitMs: 30_000, sleep: timer.sleep, now: timer.now } });
      const kek = await keys.key(vaultId(kid));
      const other = await keys.key(vaultId(otherKid));
      const wrapped = await kek.wrapKey('RSA-OAEP-256', randomBytes(40));
      const otherWrapped = await other.wrapKey('RSA-OAEP-256', randomBytes(40));
      kv.clearLog();
      kv.throttle({ requests: 1, retryAfterSeconds: 120 });
      await assert.rejects(
        kek.unwrapKey('RSA-OAEP-256', wrapped),
        (e) => isCseError(e, 'KeyUnavailable') && e.retryAfterSeconds === 120,
      );
      assert.deepEqual(timer.waits, []);
      // Another key of the same vault: refused without a request while the vault asked us to wait.
      const before = kv.requests.length;
      await assert.rejects(
        other.unwrapKey('RSA-OAEP-256', otherWrapped),
        (e) => isCseError(e, 'KeyUnavailable') && (e.retryAfterSeconds ?? 0) >= 119,
      );
      assert.equal(kv.requests.length, before);
    });

    it('a 429 without Retry-After backs off exponentially', async () => {
      const { kid } = kv.createKey('no-header');
      const timer = fakeTimer();
      const { keys } = keyVaultKeys({ throttle: { sleep: timer.sleep, now: timer.now, defaultRetryAfterMs: 100 } });
      const kek = await keys.key(vaultId(kid));
      const payload = randomBytes(40);
      const wrapped = await kek.wrapKey('RSA-OAEP-256', payload);
      kv.throttle({ requests: 2, retryAfterSeconds: null });
      assert.deepEqual(await kek.unwrapKey('RSA-OAEP-256', wrapped), payload);
      assert.deepEqual(timer.waits, [100, 200]);
    });

    it('throttled key fetches are handled the same way', async () => {
      const { kid } = kv.createKey('get-throttled');
      const timer = fakeTimer();
      const { keys } = keyVaultKeys({ throttle: { sleep: timer.sleep, now: timer.now } });
      kv.throttle({ requests: 1, retryAfterSeconds: 2, operations: ['getKey'] });
      assert.equal((await keys.key(vaultId(kid))).keyId, kid);
      assert.deepEqual(timer.waits, [2000]);
    });
  });

  it('an unreachable vault is KeyUnavailable', async () => {
    const gone = await KeyVaultStandIn.start();
    const { kid } = gone.createKey('gone');
    await gone.close();
    // No SDK retries here: the default policy retries network errors for several seconds first.
    const { keys } = keyVaultKeys({
      clientOptions: { ...KeyVaultStandIn.clientOptions, retryOptions: { maxRetries: 0 } },
    });
    await assert.rejects(
      keys.key(vaultId(kid)),
      (e) => isCseError(e, 'KeyUnavailable') && /cannot reach/.test(e.message),
    );
  });
});
