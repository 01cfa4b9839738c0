/**
 * The test-only crash hook: parsed strictly from INGEST_TEST_CRASH_AT, and it really kills its process with
 * SIGKILL at the named point (checked in a child process), and only there.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { isCseError } from '../../../shared/errors';
import { CRASH_AT_VARIABLE, CRASH_POINTS, crashHookFromEnvironment } from '../../../shared/ingest/crashPoints';

describe('crash points (test only)', () => {
  it('is off unless INGEST_TEST_CRASH_AT names a point', () => {
    assert.equal(crashHookFromEnvironment({}), undefined);
    assert.equal(crashHookFromEnvironment({ [CRASH_AT_VARIABLE]: ' ' }), undefined);
    assert.equal(typeof crashHookFromEnvironment({ [CRASH_AT_VARIABLE]: 'after-commit' }), 'function');
  });

  it('refuses an unknown point instead of silently testing nothing', () => {
    assert.throws(
      () => crashHookFromEnvironment({ [CRASH_AT_VARIABLE]: 'after-comit' }),
      (e: unknown) => isCseError(e, 'ConfigurationError') && e.message.includes(CRASH_POINTS.join(', ')),
    );
  });

  it('kills the process with SIGKILL at its point and passes the others', () => {
    const module = join(__dirname, '..', '..', '..', 'shared', 'ingest', 'crashPoints.js');
    const script = `
      const { crashHookFromEnvironment } = require(${JSON.stringify(module)});
      const hook = crashHookFromEnvironment(process.env);
      (async () => {
        for (const point of ['after-stage', 'after-commit', 'after-delete']) {
          await hook(point);
          process.stdout.write('passed ' + point + '\\n');
        }
      })();`;
    const child = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, [CRASH_AT_VARIABLE]: 'after-commit' },
      encoding: 'utf8',
    });
    assert.equal(child.signal, 'SIGKILL');
    assert.equal(child.stdout, 'passed after-stage\n');
  });
});
