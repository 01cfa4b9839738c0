/**
 * Missing or contradictory settings stop the app at start-up with a message naming the setting (issue 3), through
 * the real app files loaded by the local host, as the Functions host loads them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDevelopmentKeySet } from '../../shared/keys/localKeys';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { runLocalHostUntilExit } from '../helpers/localHost';

describe('app start-up checks its settings', () => {
  let azurite: RunningAzurite;
  const dir = mkdtempSync(join(tmpdir(), 'cse-startup-'));
  const keysFile = join(dir, 'keys.json');

  before(async () => {
    writeFileSync(keysFile, generateDevelopmentKeySet('local:startup-1'));
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startFailure(env: Record<string, string>): Promise<string> {
    const result = await runLocalHostUntilExit({ storage: azurite.connectionString, env });
    assert.notEqual(result.code, 0, 'the host must exit with an error');
    return result.logs.join('\n');
  }

  it('refuses a typo in a boolean setting, naming it', async () => {
    const log = await startFailure({ CSE_KEY_ID: 'local:startup-1', CSE_LOCAL_KEYS: keysFile, CSE_ALLOW_V1: 'yes' });
    assert.match(log, /cannot start.*CSE_ALLOW_V1/);
  });

  it('refuses an active Key Vault key whose vault is not allowed, without contacting it', async () => {
    const log = await startFailure({
      CSE_KEY_ID: 'https://prod.vault.azure.net/keys/kek',
      CSE_ALLOWED_KEY_VAULTS: 'other.vault.azure.net',
    });
    assert.match(log, /cannot start.*CSE_KEY_ID/);
  });

  it('refuses a local key file that does not exist', async () => {
    const log = await startFailure({ CSE_KEY_ID: 'local:startup-1', CSE_LOCAL_KEYS: join(dir, 'missing.json') });
    assert.match(log, /cannot start.*missing\.json/);
  });

  it('refuses a local key file that lacks CSE_KEY_ID', async () => {
    const log = await startFailure({ CSE_KEY_ID: 'local:not-there', CSE_LOCAL_KEYS: keysFile });
    assert.match(log, /cannot start.*local:not-there/);
  });
});
