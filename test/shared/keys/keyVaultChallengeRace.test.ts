/**
 * A race in @azure/keyvault-common's challenge authentication: the first request of a fresh client is sent
 * without its body (to fetch the challenge) and gets its body back when the 401 arrives, but only while the
 * policy's state is still "started". If a concurrent request of the same client completes the challenge first,
 * the first request is re-sent with a token and NO body, and Key Vault answers 400, which reads as "cannot
 * unwrap" (IntegrityCheckFailed): a rotation's first concurrent unwraps with an old key version could record
 * healthy objects as failed (seen once in the rotation scale benchmark). keyVault.ts therefore runs a client's
 * remote calls one at a time until one has succeeded.
 *
 * Reproduced deterministically: a proxy holds back the first unauthenticated unwrap for a moment, so the second
 * one completes the challenge first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UnwrappedKeyCache } from '../../../shared/keys/cekCache';
import { parseKeyId, type KeyVaultKeyId } from '../../../shared/keys/keyId';
import { KeyVaultKeys } from '../../../shared/keys/keyVault';
import { KeyVaultStandIn, testCredential } from '../../helpers/keyVaultStandIn';

/** Forwards to the stand-in, holding back the first unauthenticated unwrap by `holdMs`. */
async function holdFirstChallenge(target: string, holdMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  let held = false;
  const server: Server = createServer((req, res) => {
    const forward = (): void => {
      const out = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    };
    const first = !held && /\/unwrapkey/i.test(req.url ?? '') && req.headers.authorization === undefined;
    if (first) {
      held = true;
      setTimeout(forward, holdMs);
    } else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function vaultId(text: string): KeyVaultKeyId {
  const parsed = parseKeyId(text);
  assert.ok(parsed.ok && parsed.keyId.kind === 'keyVault', text);
  return parsed.keyId;
}

describe('concurrent first calls of a fresh Key Vault client', () => {
  let kv: KeyVaultStandIn;
  let proxy: { url: string; close(): Promise<void> };
  before(async () => {
    kv = await KeyVaultStandIn.start();
    proxy = await holdFirstChallenge(kv.url, 400);
  });
  after(async () => {
    await proxy?.close();
    await kv?.close();
  });

  const fresh = (): KeyVaultKeys =>
    new KeyVaultKeys({ credential: testCredential().credential, cekCache: new UnwrappedKeyCache() });

  it('all succeed: no request reaches the vault authenticated but without its body', async () => {
    kv.createKey('race');
    const kek = await fresh().key(vaultId(`${proxy.url}/keys/race`));
    const ceks = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const wrapped = await Promise.all(ceks.map((cek) => kek.wrapKey('RSA-OAEP', cek)));

    const reader = await fresh().key(vaultId(kek.keyId));
    kv.clearLog();
    const unwrapped = await Promise.all(wrapped.map((w) => reader.unwrapKey('RSA-OAEP', w)));
    assert.deepEqual(unwrapped, ceks);
    const bodiless = kv.operations('unwrapKey').filter((r) => r.bodyLength === 0);
    assert.deepEqual(bodiless, [], 'an authenticated unwrap without a body');
  });
});
