/**
 * loadConfig: every setting's default, parsing and error message; that it reads exactly the documented names;
 * that local.settings.sample.json is a valid configuration once the two required settings are filled in.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  CSE_SETTING_DEFAULTS,
  encryptedPropertiesFor,
  loadConfig,
  type CseConfig,
} from '../../../shared/config/config';
import { CSE_SETTING_NAMES } from '../../../shared/config/settingNames';
import { isContainerAllowed, isTableAllowed } from '../../../shared/config/azureNames';
import { isCseError } from '../../../shared/errors';
import { projectRoot } from '../../helpers/paths';

const ACCOUNT_KEY = Buffer.alloc(64, 7).toString('base64');
const BASE = {
  AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${ACCOUNT_KEY};EndpointSuffix=core.windows.net`,
  CSE_KEY_ID: 'https://myvault.vault.azure.net/keys/kek',
};

function load(overrides: Record<string, string | undefined> = {}): CseConfig {
  return loadConfig({ ...BASE, ...overrides });
}

/** Asserts that loading fails with a ConfigurationError whose message matches every pattern. */
function fails(overrides: Record<string, string | undefined>, ...patterns: RegExp[]): void {
  assert.throws(
    () => load(overrides),
    (e) => {
      assert.ok(isCseError(e, 'ConfigurationError'), String(e));
      for (const p of patterns) assert.match(e.message, p);
      return true;
    },
    JSON.stringify(overrides),
  );
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = load();
    assert.equal(config.keyId.id, 'https://myvault.vault.azure.net/keys/kek');
    assert.equal(config.keyId.kind, 'keyVault');
    assert.deepEqual(config.allowedKeyVaults, ['myvault.vault.azure.net']);
    assert.equal(config.localKeysPath, undefined);
    assert.equal(config.allowV1, false);
    assert.equal(config.allowPlaintextReads, false);
    assert.deepEqual(config.containers, { kind: 'all' });
    assert.deepEqual(config.tables, { kind: 'all' });
    assert.equal(config.tableProtocol, '2.0');
    assert.equal(config.tableEncryptedProperties.size, 0);
    assert.equal(config.ingestQueue, 'ingest');
    assert.equal(config.ingestTargetContainer, 'encrypted');
    assert.deepEqual(config.rotationSchedule, { kind: 'ncrontab', text: '0 0 3 * * *' });
    assert.equal(config.rotationConcurrency, 16);
    assert.equal(config.azureClientId, undefined);
    assert.equal(config.storage.kind, 'connectionString');
    assert.ok(Object.isFrozen(config));
  });

  it('has a default entry for every setting name', () => {
    assert.deepEqual(Object.keys(CSE_SETTING_DEFAULTS).sort(), [...CSE_SETTING_NAMES].sort());
  });

  it('reads exactly the CSE_* names, AzureWebJobsStorage(__*) and AZURE_CLIENT_ID', () => {
    const env: Record<string, string> = {
      ...BASE,
      AzureWebJobsStorageTimeout: 'not ours',
      CSE_UNKNOWN_SETTING: 'x',
      AZURE_CLIENT_SECRET: 'never read',
      PATH: '/usr/bin',
    };
    const reads = new Set<string>();
    const recorder = new Proxy(env, {
      get(target, name, receiver) {
        reads.add(String(name));
        return Reflect.get(target, name, receiver) as unknown;
      },
    });
    loadConfig(recorder);
    const allowed = new Set<string>([...CSE_SETTING_NAMES, 'AZURE_CLIENT_ID', 'AzureWebJobsStorage']);
    for (const name of reads) {
      assert.ok(allowed.has(name) || /^AzureWebJobsStorage(__|:)/i.test(name), `read ${name}`);
    }
    for (const name of allowed) assert.ok(reads.has(name), `did not read ${name}`);
  });

  it('accepts local.settings.sample.json once the required settings are filled in', () => {
    const sample = JSON.parse(readFileSync(join(projectRoot(), 'local.settings.sample.json'), 'utf8')) as {
      Values: Record<string, string>;
    };
    for (const name of CSE_SETTING_NAMES) assert.ok(name in sample.Values, `${name} missing from the sample`);
    const config = loadConfig({ ...sample.Values, ...BASE });
    assert.equal(config.rotationConcurrency, 16);
    assert.deepEqual(config.containers, { kind: 'all' });
  });

  it('treats empty and blank values as unset and trims values', () => {
    const config = load({
      CSE_ALLOW_V1: '',
      CSE_CONTAINERS: '   ',
      CSE_ROTATION_CONCURRENCY: ' 8 ',
      CSE_INGEST_QUEUE: ' uploads ',
    });
    assert.equal(config.allowV1, false);
    assert.deepEqual(config.containers, { kind: 'all' });
    assert.equal(config.rotationConcurrency, 8);
    assert.equal(config.ingestQueue, 'uploads');
  });

  describe('CSE_KEY_ID, CSE_LOCAL_KEYS, CSE_ALLOWED_KEY_VAULTS', () => {
    it('requires CSE_KEY_ID', () => fails({ CSE_KEY_ID: undefined }, /CSE_KEY_ID is not set/));

    it('refuses a malformed CSE_KEY_ID', () => {
      fails({ CSE_KEY_ID: 'https://myvault.vault.azure.net/secrets/kek' }, /CSE_KEY_ID: .*not a Key Vault key id/);
      fails({ CSE_KEY_ID: 'http://myvault.vault.azure.net/keys/kek' }, /CSE_KEY_ID: .*https/);
    });

    it('a local kid needs CSE_LOCAL_KEYS', () => {
      fails({ CSE_KEY_ID: 'local:kek-1' }, /CSE_KEY_ID: "local:kek-1" is a local key id, but CSE_LOCAL_KEYS/);
      const config = load({ CSE_KEY_ID: 'local:kek-1', CSE_LOCAL_KEYS: '/keys/dev.jwks.json' });
      assert.deepEqual(config.keyId, { kind: 'local', id: 'local:kek-1' });
      assert.equal(config.localKeysPath, '/keys/dev.jwks.json');
      assert.deepEqual(config.allowedKeyVaults, [], 'no vault allowed by default for a local active key');
    });

    it('parses CSE_ALLOWED_KEY_VAULTS and requires the active key to be allowed', () => {
      const config = load({
        CSE_ALLOWED_KEY_VAULTS: 'MyVault.vault.azure.net, other.vault.azure.net,hsm.managedhsm.azure.net',
      });
      assert.deepEqual(config.allowedKeyVaults, [
        'myvault.vault.azure.net',
        'other.vault.azure.net',
        'hsm.managedhsm.azure.net',
      ]);
      fails(
        { CSE_ALLOWED_KEY_VAULTS: 'other.vault.azure.net' },
        /CSE_ALLOWED_KEY_VAULTS: does not include myvault\.vault\.azure\.net, the vault of CSE_KEY_ID/,
      );
      fails({ CSE_ALLOWED_KEY_VAULTS: '*' }, /CSE_ALLOWED_KEY_VAULTS: "\*" is not allowed/);
      fails(
        { CSE_ALLOWED_KEY_VAULTS: 'https://myvault.vault.azure.net/' },
        /CSE_ALLOWED_KEY_VAULTS: .*write the host only/,
      );
      fails(
        { CSE_ALLOWED_KEY_VAULTS: 'myvault.vault.azure.net,,x.vault.azure.net' },
        /CSE_ALLOWED_KEY_VAULTS: empty item/,
      );
      fails({ CSE_ALLOWED_KEY_VAULTS: 'myvault.vault.azure.net,MYVAULT.vault.azure.net' }, /listed twice/);
    });
  });

  describe('booleans', () => {
    for (const name of ['CSE_ALLOW_V1', 'CSE_ALLOW_PLAINTEXT_READS'] as const) {
      it(`${name}: true/false (any case), anything else is an error`, () => {
        const key = name === 'CSE_ALLOW_V1' ? 'allowV1' : 'allowPlaintextReads';
        assert.equal(load({ [name]: 'true' })[key], true);
        assert.equal(load({ [name]: 'True' })[key], true);
        assert.equal(load({ [name]: 'FALSE' })[key], false);
        for (const typo of ['yes', '1', 'ture', 'false!', 'on']) {
          fails({ [name]: typo }, new RegExp(`${name}: expected true or false, got "${typo.replace('!', '\\!')}"`));
        }
      });
    }
  });

  describe('CSE_CONTAINERS and CSE_TABLES', () => {
    it('parses lists strictly', () => {
      const config = load({ CSE_CONTAINERS: 'docs, photos,encrypted', CSE_TABLES: 'Orders,customers' });
      assert.deepEqual(config.containers, { kind: 'only', names: ['docs', 'photos', 'encrypted'] });
      assert.deepEqual(config.tables, { kind: 'only', names: ['Orders', 'customers'] });
      fails({ CSE_CONTAINERS: 'Docs' }, /CSE_CONTAINERS: "Docs" is not a valid container name/);
      fails({ CSE_CONTAINERS: 'docs,' }, /CSE_CONTAINERS: empty item/);
      fails({ CSE_CONTAINERS: 'docs,*' }, /CSE_CONTAINERS: "\*" means all containers and cannot be combined/);
      fails({ CSE_CONTAINERS: 'docs,docs,encrypted' }, /CSE_CONTAINERS: "docs" is listed twice/);
      fails({ CSE_CONTAINERS: 'a--b,encrypted' }, /"a--b" is not a valid container name/);
      fails({ CSE_TABLES: '1orders' }, /CSE_TABLES: "1orders" is not a valid table name/);
      fails({ CSE_TABLES: 'Orders,orders' }, /CSE_TABLES: "orders" is listed twice/);
      fails({ CSE_TABLES: 'rotations' }, /CSE_TABLES: "rotations" is the app's own table/);
    });

    it('"*" covers everything but the host\'s and the app\'s own containers and tables', () => {
      const { containers, tables } = load();
      assert.ok(isContainerAllowed(containers, 'photos'));
      assert.ok(!isContainerAllowed(containers, 'azure-webjobs-hosts'));
      assert.ok(!isContainerAllowed(containers, 'azure-webjobs-secrets'));
      assert.ok(!isContainerAllowed(containers, '$logs'));
      assert.ok(isTableAllowed(tables, 'Orders'));
      assert.ok(!isTableAllowed(tables, 'AzureFunctionsDiagnosticEvents202601'));
      assert.ok(!isTableAllowed(tables, 'rotations'));
      const only = load({ CSE_CONTAINERS: 'docs,encrypted', CSE_TABLES: 'Orders' });
      assert.ok(isContainerAllowed(only.containers, 'docs'));
      assert.ok(!isContainerAllowed(only.containers, 'photos'));
      assert.ok(isTableAllowed(only.tables, 'orders'), 'table names are case-insensitive');
    });
  });

  describe('CSE_TABLE_PROTOCOL', () => {
    it('is 2.0 or 1.0; 1.0 needs CSE_ALLOW_V1=true', () => {
      assert.equal(load({ CSE_TABLE_PROTOCOL: '2.0' }).tableProtocol, '2.0');
      assert.equal(load({ CSE_TABLE_PROTOCOL: '1.0', CSE_ALLOW_V1: 'true' }).tableProtocol, '1.0');
      fails({ CSE_TABLE_PROTOCOL: '1.0' }, /CSE_TABLE_PROTOCOL: 1\.0 .* needs CSE_ALLOW_V1=true/);
      fails({ CSE_TABLE_PROTOCOL: '2' }, /CSE_TABLE_PROTOCOL: expected 2\.0 or 1\.0, got "2"/);
    });
  });

  describe('CSE_TABLE_ENCRYPTED_PROPERTIES', () => {
    it('parses table:a,b;other:c', () => {
      const config = load({ CSE_TABLE_ENCRYPTED_PROPERTIES: 'Orders:card,cvv; customers : email' });
      assert.deepEqual(encryptedPropertiesFor(config, 'orders'), ['card', 'cvv']);
      assert.deepEqual(encryptedPropertiesFor(config, 'Customers'), ['email']);
      assert.deepEqual(encryptedPropertiesFor(config, 'other'), []);
    });

    it('refuses malformed or contradictory entries', () => {
      const name = 'CSE_TABLE_ENCRYPTED_PROPERTIES';
      fails(
        { [name]: 'orders' },
        /CSE_TABLE_ENCRYPTED_PROPERTIES: "orders" must have the form table:property1,property2/,
      );
      fails({ [name]: 'orders:' }, /empty item/);
      fails({ [name]: 'orders:a;' }, /CSE_TABLE_ENCRYPTED_PROPERTIES: empty item/);
      fails({ [name]: 'orders:a,,b' }, /empty item/);
      fails({ [name]: 'orders:PartitionKey' }, /"PartitionKey" cannot be encrypted/);
      fails({ [name]: 'orders:_ClientEncryptionMetadata2' }, /cannot be encrypted/);
      fails({ [name]: 'orders:my-prop' }, /"my-prop" cannot be encrypted/);
      fails({ [name]: 'orders:a;Orders:b' }, /table "Orders" appears twice/);
      fails({ [name]: 'orders:a,a' }, /property "a" of table orders is listed twice/);
      fails({ [name]: '1x:a' }, /"1x" is not a valid table name/);
      fails({ [name]: 'orders:a', CSE_TABLES: 'customers' }, /table "orders" is not allowed by CSE_TABLES/);
    });
  });

  describe('ingestion', () => {
    it('validates the queue and the target container', () => {
      const config = load({ CSE_INGEST_QUEUE: 'uploads-1', CSE_INGEST_TARGET_CONTAINER: 'vault-data' });
      assert.equal(config.ingestQueue, 'uploads-1');
      assert.equal(config.ingestTargetContainer, 'vault-data');
      fails({ CSE_INGEST_QUEUE: 'Ingest' }, /CSE_INGEST_QUEUE: "Ingest" is not a valid queue name/);
      fails({ CSE_INGEST_QUEUE: 'in' }, /CSE_INGEST_QUEUE/);
      fails(
        { CSE_INGEST_TARGET_CONTAINER: 'Encrypted' },
        /CSE_INGEST_TARGET_CONTAINER: "Encrypted" is not a valid container name/,
      );
      fails(
        { CSE_INGEST_TARGET_CONTAINER: 'azure-webjobs-hosts' },
        /CSE_INGEST_TARGET_CONTAINER: "azure-webjobs-hosts" is not allowed by CSE_CONTAINERS/,
      );
      fails({ CSE_CONTAINERS: 'docs' }, /CSE_INGEST_TARGET_CONTAINER: "encrypted" is not allowed by CSE_CONTAINERS/);
    });
  });

  describe('rotation', () => {
    it('CSE_ROTATION_SCHEDULE: 6-field NCRONTAB or hh:mm:ss', () => {
      assert.deepEqual(load({ CSE_ROTATION_SCHEDULE: '*/30 * * * * *' }).rotationSchedule, {
        kind: 'ncrontab',
        text: '*/30 * * * * *',
      });
      assert.deepEqual(load({ CSE_ROTATION_SCHEDULE: '01:30:00' }).rotationSchedule, {
        kind: 'interval',
        text: '01:30:00',
        milliseconds: 90 * 60_000,
      });
      fails(
        { CSE_ROTATION_SCHEDULE: '0 3 * * *' },
        /CSE_ROTATION_SCHEDULE: "0 3 \* \* \*" is neither a 6-field NCRONTAB expression .* \(it has 5 fields\)/,
      );
      fails({ CSE_ROTATION_SCHEDULE: '0 0 25 * * *' }, /CSE_ROTATION_SCHEDULE: .*not a valid NCRONTAB expression/);
      fails({ CSE_ROTATION_SCHEDULE: '0 0 3 ? * *' }, /CSE_ROTATION_SCHEDULE: .*does not support \?/);
      fails({ CSE_ROTATION_SCHEDULE: '@daily' }, /CSE_ROTATION_SCHEDULE/);
      fails({ CSE_ROTATION_SCHEDULE: '00:00:00' }, /CSE_ROTATION_SCHEDULE: an interval of 00:00:00/);
    });

    it('CSE_ROTATION_CONCURRENCY: a whole number from 1 to 1000', () => {
      assert.equal(load({ CSE_ROTATION_CONCURRENCY: '1' }).rotationConcurrency, 1);
      assert.equal(load({ CSE_ROTATION_CONCURRENCY: '1000' }).rotationConcurrency, 1000);
      for (const bad of ['0', '-1', '1.5', '16x', '1e2', '1001', 'sixteen']) {
        fails(
          { CSE_ROTATION_CONCURRENCY: bad },
          new RegExp(
            `CSE_ROTATION_CONCURRENCY: expected a whole number from 1 to 1000, got "${bad.replace('.', '\\.')}"`,
          ),
        );
      }
    });
  });

  it('AZURE_CLIENT_ID must be a GUID', () => {
    const id = '8f0e6c1e-2b2c-4e5c-9a47-3c1d2e6f7a8b';
    assert.equal(load({ AZURE_CLIENT_ID: id }).azureClientId, id);
    fails({ AZURE_CLIENT_ID: 'my-identity' }, /AZURE_CLIENT_ID: "my-identity" is not a GUID/);
  });

  it('AzureWebJobsStorage is required', () => {
    fails({ AzureWebJobsStorage: undefined }, /AzureWebJobsStorage is not set/);
    fails({ AzureWebJobsStorage: '' }, /AzureWebJobsStorage is not set/);
  });

  it('reports every problem at once, one per line', () => {
    assert.throws(
      () => loadConfig({ CSE_ALLOW_V1: 'yes', CSE_ROTATION_CONCURRENCY: '0' }),
      (e) => {
        assert.ok(isCseError(e, 'ConfigurationError'));
        const lines = e.message.split('\n');
        assert.equal(lines[0], 'invalid configuration:');
        for (const p of [
          /^- AzureWebJobsStorage is not set/,
          /^- CSE_KEY_ID is not set/,
          /^- CSE_ALLOW_V1:/,
          /^- CSE_ROTATION_CONCURRENCY:/,
        ]) {
          assert.ok(
            lines.some((l) => p.test(l)),
            `${p} in\n${e.message}`,
          );
        }
        return true;
      },
    );
  });

  it('never shows storage secrets: not in errors, JSON or inspect output', () => {
    const secretKey = Buffer.from('super secret account key material!').toString('base64');
    assert.throws(
      () =>
        loadConfig({
          ...BASE,
          AzureWebJobsStorage: `AccountName=acct;AccountKey=${secretKey};SharedAccessSignature=sv=2020&sig=abc`,
        }),
      (e) => isCseError(e, 'ConfigurationError') && !e.message.includes(secretKey) && !e.message.includes('sig=abc'),
    );
    const config = load({
      AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${secretKey}`,
    });
    assert.ok(!JSON.stringify(config).includes(secretKey));
    assert.ok(!inspect(config, { depth: 10 }).includes(secretKey));
    assert.ok(JSON.stringify(config).includes('[redacted]'));
  });
});
