/**
 * The table entity HTTP API and the legacy protocol 1.0, over real HTTP, with two local hosts on one Azurite:
 * - "legacy": CSE_TABLE_PROTOCOL=1.0 with CSE_ALLOW_V1=true and CSE_TABLES=*; what it writes is 1.0, and
 *   Microsoft's Python azure-cosmosdb-table SDK (test/interop/table_sdk.py, /usr/bin/python3) decrypts it;
 * - "current": the defaults (2.0 writes, no 1.0 reads), which refuses 1.0 entities with LegacyFormatDisabled.
 * Plus the `*` table list (the host's and the app's own tables stay closed) and CSE_TABLE_PROTOCOL=1.0 without
 * CSE_ALLOW_V1 (a configuration error: nothing is written).
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { generateDevelopmentKeySet } from '../../shared/keys/localKeys';
import { fromSdkEntity } from '../../shared/tables/sdkEntity';
import { startAzurite, tableClientOptions, type RunningAzurite } from '../helpers/azurite';
import { runLocalHostUntilExit } from '../helpers/localHost';
import { projectRoot } from '../helpers/paths';
import { startTestHost, type TestHost } from './support/host';
import { ApiClient, errorCode, type HttpResult } from './support/httpClient';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const KID = 'local:tables-legacy';
const TABLE = 'legacy';

type PyResult = { ok: boolean; error?: string; properties?: Record<string, unknown> } & Record<string, unknown>;

describe('table entity HTTP API: protocol 1.0', () => {
  let azurite: RunningAzurite;
  let legacy: TestHost;
  let current: TestHost;
  let v1: ApiClient;
  let v2: ApiClient;
  let tables: TableServiceClient;
  const dir = mkdtempSync(join(tmpdir(), 'cse-tables-legacy-'));
  const keysFile = join(dir, 'keys.json');
  const hasPythonSdk =
    spawnSync(PYTHON, ['-c', 'import azure.cosmosdb.table'], { stdio: 'ignore', timeout: 30_000 }).status === 0;

  before(async () => {
    writeFileSync(keysFile, generateDevelopmentKeySet(KID), { mode: 0o600 });
    azurite = await startAzurite();
    tables = TableServiceClient.fromConnectionString(azurite.connectionString, tableClientOptions);
    const common = { AzureWebJobsStorage: azurite.connectionString, CSE_KEY_ID: KID, CSE_LOCAL_KEYS: keysFile };
    [legacy, current] = await Promise.all([
      startTestHost({
        ...common,
        CSE_TABLE_PROTOCOL: '1.0',
        CSE_ALLOW_V1: 'true',
        CSE_TABLES: '*',
        CSE_TABLE_ENCRYPTED_PROPERTIES: `${TABLE}:Secret,Note`,
      }),
      startTestHost({ ...common, CSE_TABLE_ENCRYPTED_PROPERTIES: `${TABLE}:Secret,Note` }),
    ]);
    v1 = new ApiClient(legacy.url);
    v2 = new ApiClient(current.url);
  });
  after(async () => {
    await Promise.all([legacy?.stop(), current?.stop()]);
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const entityPath = (pk: string, rk: string, table = TABLE): string =>
    `/api/tables/${table}/entities/${encodeURIComponent(pk)}/${encodeURIComponent(rk)}`;
  const put = (api: ApiClient, pk: string, rk: string, body: object, headers: Record<string, string> = {}) =>
    api.request('PUT', entityPath(pk, rk), { body: JSON.stringify(body), headers });
  const getJson = async (api: ApiClient, path: string): Promise<HttpResult & { json: Record<string, unknown> }> => {
    const r = await api.request('GET', path);
    return { ...r, json: JSON.parse(r.body.toString('utf8')) as Record<string, unknown> };
  };
  const outcome = (r: HttpResult): [number, string | undefined] => [r.status, errorCode(r)];
  const storedAgent = async (pk: string, rk: string): Promise<{ Protocol: string; EncryptionAlgorithm: string }> => {
    const raw = TableClient.fromConnectionString(azurite.connectionString, TABLE, tableClientOptions);
    const e = fromSdkEntity(
      (await raw.getEntity(pk, rk, { disableTypeConversion: true })) as unknown as Record<string, unknown>,
    );
    return JSON.parse(e.properties['_ClientEncryptionMetadata1']?.value as string).EncryptionAgent;
  };
  const python = async (t: TestContext, args: string[]): Promise<PyResult | undefined> => {
    if (!hasPythonSdk) {
      t.skip('python3-azure-cosmosdb-table is not installed in /usr/bin/python3 (.ci/run installs it)');
      return undefined;
    }
    const script = join(projectRoot(), 'test', 'interop', 'table_sdk.py');
    const common = ['--conn', azurite.connectionString, '--table', TABLE, '--jwks', keysFile, '--kid', KID];
    const { stdout } = await run(PYTHON, [script, ...args, ...common], { timeout: 60_000 });
    return JSON.parse(stdout) as PyResult;
  };

  const pk = 'legacy é';

  it('PUT writes protocol 1.0, which the Python SDK decrypts (get and query paths)', async (t) => {
    const body = {
      Secret: 'top secret ü',
      Note: '🚀 "quoted" <xml>',
      Empty: '',
      Plain: 'visible',
      Count: 7,
    };
    const r = await put(v1, pk, 'ours-1', body, { 'x-cse-encrypt': 'Secret,Note,Empty' });
    assert.equal(r.status, 204, r.body.toString());
    assert.deepEqual(await storedAgent(pk, 'ours-1'), { Protocol: '1.0', EncryptionAlgorithm: 'AES_CBC_256' });
    // The configured list (Secret, Note) applies without the header, in 1.0 as well.
    assert.equal((await put(v1, pk, 'ours-2', { Secret: 's2', Note: 'n2', Other: 'o2' })).status, 204);
    assert.equal((await storedAgent(pk, 'ours-2')).Protocol, '1.0');

    const got = await getJson(v1, entityPath(pk, 'ours-1'));
    assert.equal(got.status, 200);
    assert.equal(got.headers['x-cse-encrypt'], 'Secret,Note,Empty');
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(got.json).filter(([k]) => !k.startsWith('odata.') && !k.startsWith('Timestamp')),
      ),
      { PartitionKey: pk, RowKey: 'ours-1', ...body },
    );

    const read = await python(t, ['read', '--pk', pk, '--rk', 'ours-1', '--require-encryption']);
    if (read === undefined) return;
    assert.equal(read.ok, true, JSON.stringify(read));
    assert.deepEqual(read.properties, {
      Secret: 'top secret ü',
      Note: '🚀 "quoted" <xml>',
      Empty: '',
      Plain: 'visible',
      Count: { type: 'Edm.Int32', value: '7' }, // written with its annotation, so typed for the SDK too
    });
    const listed = await python(t, ['query', '--pk', pk, '--require-encryption']);
    assert.equal(listed?.ok, true, JSON.stringify(listed));
    const rows = listed?.['entities'] as { RowKey: string; properties: Record<string, unknown> }[];
    assert.deepEqual(
      rows.map((e) => [e.RowKey, e.properties['Secret'], e.properties['Note']]),
      [
        ['ours-1', 'top secret ü', '🚀 "quoted" <xml>'],
        ['ours-2', 's2', 'n2'],
      ],
    );
  });

  it('the host without CSE_ALLOW_V1 refuses 1.0 entities: 409 LegacyFormatDisabled (entity and listing)', async () => {
    await put(v1, pk, 'refused', { Secret: 'not for v2' });
    const r = await v2.request('GET', entityPath(pk, 'refused'));
    assert.deepEqual(outcome(r), [409, 'LegacyFormatDisabled']);
    assert.match(r.body.toString(), /CSE_ALLOW_V1/);
    assert.ok(!r.body.toString().includes('not for v2'));
    const l = await v2.request('GET', `/api/tables/${TABLE}/entities/${encodeURIComponent(pk)}`);
    assert.deepEqual(outcome(l), [409, 'LegacyFormatDisabled']);
  });

  it('entities the Python SDK encrypts (1.0) are served by the 1.0 host only', async (t) => {
    const w = await python(t, [
      'write',
      '--pk',
      pk,
      '--rk',
      'theirs',
      '--props',
      JSON.stringify({ B: 'beta', A: 'alpha ✓', Clear: 'c', N: 5 }),
      '--encrypt',
      'A,B',
    ]);
    if (w === undefined) return;
    assert.equal(w.ok, true, JSON.stringify(w));
    const got = await getJson(v1, entityPath(pk, 'theirs'));
    assert.equal(got.status, 200, got.body.toString());
    assert.equal(got.headers['x-cse-encrypt'], 'B,A');
    assert.deepEqual([got.json['A'], got.json['B'], got.json['Clear']], ['alpha ✓', 'beta', 'c']);
    // A Python int goes as Edm.Int64 and comes back annotated as one.
    assert.deepEqual([got.json['N@odata.type'], got.json['N']], ['Edm.Int64', '5']);
    assert.deepEqual(outcome(await v2.request('GET', entityPath(pk, 'theirs'))), [409, 'LegacyFormatDisabled']);
  });

  it('the 2.0 host writes 2.0 (never 1.0); the 1.0 host reads both in one listing', async () => {
    const p2 = 'mixed';
    assert.equal((await put(v2, p2, 'a-v2', { Secret: 'two' })).status, 204);
    assert.deepEqual(await storedAgent(p2, 'a-v2'), { Protocol: '2.0', EncryptionAlgorithm: 'AES_GCM_256' });
    assert.equal((await put(v1, p2, 'b-v1', { Secret: 'one' })).status, 204);
    assert.equal((await storedAgent(p2, 'b-v1')).Protocol, '1.0');
    const page = await getJson(v1, `/api/tables/${TABLE}/entities/${p2}`);
    assert.equal(page.status, 200, page.body.toString());
    const entities = page.json['entities'] as Record<string, unknown>[];
    assert.deepEqual(
      entities.map((e) => [e['RowKey'], e['Secret']]),
      [
        ['a-v2', 'two'],
        ['b-v1', 'one'],
      ],
    );
  });

  it("CSE_TABLES=* opens every table except the host's own and rotations (403 TableNotAllowed)", async () => {
    for (const table of ['rotations', 'AzureWebJobsHostLogs202601', 'AzureFunctionsDiagnosticEvents202601']) {
      const r = await v1.request('PUT', entityPath('p', 'r', table), { body: '{"V":"x"}' });
      assert.deepEqual(outcome(r), [403, 'TableNotAllowed'], table);
      assert.deepEqual(outcome(await v1.request('GET', `/api/tables/${table}/entities/p`)), [403, 'TableNotAllowed']);
    }
    const names: string[] = [];
    for await (const t of tables.listTables()) names.push(t.name ?? '');
    assert.ok(!names.some((n) => /^(rotations|AzureWebJobs|AzureFunctions)/i.test(n)), names.join(','));
    assert.equal((await v1.request('PUT', entityPath('p', 'r', 'SomeOtherTable'), { body: '{"V":"x"}' })).status, 204);
  });

  it('CSE_TABLE_PROTOCOL=1.0 without CSE_ALLOW_V1 stops start-up, naming both settings: nothing is served', async () => {
    const outcomeOfStart = await runLocalHostUntilExit({
      storage: azurite.connectionString,
      env: { CSE_KEY_ID: KID, CSE_LOCAL_KEYS: keysFile, CSE_TABLE_PROTOCOL: '1.0' },
    });
    assert.notEqual(outcomeOfStart.code, 0);
    assert.match(outcomeOfStart.logs.join('\n'), /cannot start.*CSE_TABLE_PROTOCOL.*CSE_ALLOW_V1/);
  });
});
