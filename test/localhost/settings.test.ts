import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  applyLocalSettings,
  readLocalSettings,
  resolveBindingExpression,
  resolveBindingOptions,
} from '../../localhost/settings';

describe('settings', () => {
  it('resolves %Setting% expressions, and names a missing setting and where it was used', () => {
    const settings = { CSE_INGEST_QUEUE: 'ingest', EMPTY: '' };
    assert.equal(resolveBindingExpression('%CSE_INGEST_QUEUE%', settings, 'f'), 'ingest');
    assert.equal(resolveBindingExpression('pre-%CSE_INGEST_QUEUE%-post', settings, 'f'), 'pre-ingest-post');
    assert.equal(resolveBindingExpression('no expressions', settings, 'f'), 'no expressions');
    assert.throws(
      () => resolveBindingExpression('%CSE_ROTATION_SCHEDULE%', settings, "Function 'rotate' (schedule)"),
      /Function 'rotate' \(schedule\) uses the app setting '%CSE_ROTATION_SCHEDULE%', which is not set/,
    );
    assert.throws(() => resolveBindingExpression('%EMPTY%', settings, 'f'), /'%EMPTY%', which is not set/);
  });

  it('resolves every string option of a binding but its type and name', () => {
    const resolved = resolveBindingOptions(
      { type: 'queueTrigger', name: '%N%', queueName: '%Q%', connection: 'AzureWebJobsStorage', n: 5 },
      { Q: 'queue-a', N: 'x' },
      'f',
    );
    assert.deepEqual(resolved, {
      type: 'queueTrigger',
      name: '%N%',
      queueName: 'queue-a',
      connection: 'AzureWebJobsStorage',
      n: 5,
    });
  });

  it('reads local.settings.json Values; the environment wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'settings-'));
    try {
      writeFileSync(
        join(dir, 'local.settings.json'),
        JSON.stringify({ IsEncrypted: false, Values: { A: 'file', B: 'file', N: 3 } }),
      );
      const env: NodeJS.ProcessEnv = { A: 'env' };
      const applied = applyLocalSettings(env, readLocalSettings(dir));
      assert.deepEqual(applied, ['B', 'N']);
      assert.deepEqual(env, { A: 'env', B: 'file', N: '3' });

      writeFileSync(join(dir, 'local.settings.json'), JSON.stringify({ IsEncrypted: true, Values: {} }));
      assert.throws(() => readLocalSettings(dir), /IsEncrypted/);
      writeFileSync(join(dir, 'local.settings.json'), '{ not json');
      assert.throws(() => readLocalSettings(dir), /not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(readLocalSettings(tmpdir() + '/does-not-exist'), {});
  });
});
