import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAuthorized, readFunctionKeys } from '../../../localhost/http/functionKeys';

describe('function keys', () => {
  it('are not checked when none are configured', () => {
    assert.equal(readFunctionKeys({}), undefined);
    assert.equal(isAuthorized('function', undefined, undefined), true);
    assert.equal(isAuthorized('admin', undefined, undefined), true);
  });

  it('accept a function key or the master key for function level, only the master key for admin', () => {
    const keys = readFunctionKeys({ LOCALHOST_FUNCTION_KEYS: ' a , b ', LOCALHOST_MASTER_KEY: 'm' });
    assert.deepEqual(keys, { functionKeys: ['a', 'b'], masterKey: 'm' });
    assert.equal(isAuthorized('anonymous', undefined, keys), true);
    assert.equal(isAuthorized('function', 'a', keys), true);
    assert.equal(isAuthorized('function', 'm', keys), true);
    assert.equal(isAuthorized('function', 'c', keys), false);
    assert.equal(isAuthorized('function', undefined, keys), false);
    assert.equal(isAuthorized('admin', 'a', keys), false);
    assert.equal(isAuthorized('admin', 'm', keys), true);
  });
});
