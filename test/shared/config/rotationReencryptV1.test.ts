/** CSE_ROTATION_REENCRYPT_V1: whether rotations the app starts by itself re-encrypt v1.0 blobs (strict boolean). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../../shared/config/config';
import { isCseError } from '../../../shared/errors';

const BASE = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  CSE_KEY_ID: 'https://myvault.vault.azure.net/keys/kek',
};

describe('CSE_ROTATION_REENCRYPT_V1', () => {
  it('defaults to false and reads true/false', () => {
    assert.equal(loadConfig(BASE).rotationReencryptV1, false);
    assert.equal(loadConfig({ ...BASE, CSE_ROTATION_REENCRYPT_V1: 'true' }).rotationReencryptV1, true);
    assert.equal(loadConfig({ ...BASE, CSE_ROTATION_REENCRYPT_V1: ' false ' }).rotationReencryptV1, false);
    assert.equal(
      loadConfig({ ...BASE, CSE_ROTATION_REENCRYPT_V1: 'True' }).rotationReencryptV1,
      true,
      'like every boolean setting',
    );
  });

  it('refuses anything but true or false, naming the setting', () => {
    for (const bad of ['yes', '1', 'on']) {
      assert.throws(
        () => loadConfig({ ...BASE, CSE_ROTATION_REENCRYPT_V1: bad }),
        (e: unknown) => isCseError(e, 'ConfigurationError') && /CSE_ROTATION_REENCRYPT_V1/.test(e.message),
        bad,
      );
    }
  });
});
