/**
 * Interop with Microsoft's legacy Python table SDK (Debian python3-azure-cosmosdb-table, /usr/bin/python3),
 * both sides talking to the same Azurite:
 * - our 1.0 entities are decrypted by the Python SDK;
 * - entities the Python SDK encrypts are decrypted by us (1.0, with allowV1), and refused without it;
 * - our 2.0 entities are refused by the legacy SDK (it only knows 1.0): with require_encryption it raises, and
 *   without it returns only ciphertext, never the plaintext.
 * The Python side is test/interop/table_sdk.py; the SDK does its own crypto there.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TableClient } from '@azure/data-tables';
import { isCseError } from '../../../shared/errors';
import { generateDevelopmentKeySet, parseJwkSet } from '../../../shared/keys/localKeys';
import { EncryptedTableClient } from '../../../shared/tables/encryptedTableClient';
import { properties, tv, type EntityRecord, type TableValue } from '../../../shared/tables/entityModel';
import { startAzurite, tableClientOptions, type RunningAzurite } from '../../helpers/azurite';
import { projectRoot } from '../../helpers/paths';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const KID = 'local:py-interop';
const TABLE = 'interop';

const jwks = generateDevelopmentKeySet(KID);
const ring = parseJwkSet(jwks, 'interop');
const keys = { kek: ring.get(KID)!, resolver: ring };

let azurite: RunningAzurite;
let dir: string;
let jwksPath: string;

async function python(args: string[]): Promise<Record<string, unknown>> {
  const script = join(projectRoot(), 'test', 'interop', 'table_sdk.py');
  const common = ['--conn', azurite.connectionString, '--table', TABLE, '--jwks', jwksPath, '--kid', KID];
  const { stdout } = await run(PYTHON, [script, ...args, ...common], { timeout: 60_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

function entity(pk: string, rk: string, props: Record<string, TableValue>): EntityRecord {
  return { partitionKey: pk, rowKey: rk, properties: properties(Object.entries(props)) };
}

function client(options: ConstructorParameters<typeof EncryptedTableClient>[2]): EncryptedTableClient {
  return new EncryptedTableClient(
    TableClient.fromConnectionString(azurite.connectionString, TABLE, tableClientOptions),
    keys,
    options,
  );
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cse-table-interop-'));
  jwksPath = join(dir, 'keys.json');
  writeFileSync(jwksPath, jwks, { mode: 0o600 });
  azurite = await startAzurite();
  await client({}).createTableIfMissing();
});
after(async () => {
  await azurite?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('table interop with the Python azure-cosmosdb-table SDK', () => {
  const pk = 'pk é';

  it('reads our 1.0 entities', async () => {
    const legacy = client({ protocol: '1.0', allowV1: true, encryptedProperties: ['Secret', 'Empty', 'Emoji'] });
    await legacy.upsert(
      entity(pk, 'ours-1', {
        Secret: tv.string('top secret ü'),
        Empty: tv.string(''),
        Emoji: tv.string('🚀 "quoted" <xml>'),
        Plain: tv.string('visible'),
        Count: tv.int32(7),
      }),
    );
    const r = await python(['read', '--pk', pk, '--rk', 'ours-1', '--require-encryption']);
    assert.equal(r['ok'], true, JSON.stringify(r));
    const props = r['properties'] as Record<string, unknown>;
    assert.equal(props['Secret'], 'top secret ü');
    assert.equal(props['Empty'], '');
    assert.equal(props['Emoji'], '🚀 "quoted" <xml>');
    assert.equal(props['Plain'], 'visible');
    assert.equal(props['_ClientEncryptionMetadata1'], undefined);
    assert.equal(props['_ClientEncryptionMetadata2'], undefined);
  });

  it('its entities are read by us with allowV1, and refused without', async () => {
    const w = await python([
      'write',
      '--pk',
      pk,
      '--rk',
      'theirs-1',
      '--props',
      JSON.stringify({ B: 'beta', A: 'alpha ✓', Clear: 'c', N: 5 }),
      '--encrypt',
      'A,B',
    ]);
    assert.equal(w['ok'], true);
    const got = await client({ allowV1: true }).get(pk, 'theirs-1');
    assert.deepEqual(got.properties, {
      B: tv.string('beta'),
      A: tv.string('alpha ✓'),
      Clear: tv.string('c'),
      N: tv.int64('5'),
    });
    assert.equal(got.encryption?.protocol, '1.0');
    assert.deepEqual(got.encryption?.encryptedProperties, ['B', 'A']);
    await assert.rejects(client({}).get(pk, 'theirs-1'), (e: unknown) => isCseError(e, 'LegacyFormatDisabled'));
  });

  it('refuses our 2.0 entities (the legacy format has no 2.0), never showing plaintext', async () => {
    await client({ encryptedProperties: ['Secret'] }).upsert(
      entity(pk, 'ours-2', { Secret: tv.string('do not leak'), Plain: tv.string('p') }),
    );
    // The SDK's version check ("Encryption version is not supported.") is wrapped into its generic error.
    const strict = await python(['read', '--pk', pk, '--rk', 'ours-2', '--require-encryption']);
    assert.equal(strict['ok'], false, JSON.stringify(strict));
    assert.match(String(strict['error']), /Decryption failed/);
    const lax = await python(['read', '--pk', pk, '--rk', 'ours-2']);
    const text = JSON.stringify(lax);
    assert.doesNotMatch(text, /do not leak/);
    // Without require_encryption the SDK treats the entity as unencrypted and hands back the stored binary.
    assert.equal(lax['ok'], true, text);
    const props = lax['properties'] as Record<string, unknown>;
    assert.equal(typeof (props['Secret'] as { binary?: unknown }).binary, 'string', 'ciphertext, not a string');
    assert.equal(props['Plain'], 'p');
  });
});
