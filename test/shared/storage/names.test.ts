import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import { validateBlobName, validateContainerName } from '../../../shared/storage/names';
import { ContainerPolicy } from '../../../shared/storage/containerPolicy';

const invalidName = (e: unknown): boolean => isCseError(e, 'InvalidName');

describe('container names', () => {
  it('accepts Azure-valid names', () => {
    for (const name of ['abc', 'a-b-c', 'data2024', 'x'.repeat(63), '0ab']) validateContainerName(name);
  });
  it('refuses names Azure refuses', () => {
    for (const name of ['ab', 'x'.repeat(64), 'Abc', 'a--b', '-ab', 'ab-', 'a_b', 'a.b', '$logs', '$root', '', 'a b']) {
      assert.throws(() => validateContainerName(name), invalidName, name);
    }
  });
});

describe('blob names', () => {
  it('accepts slashes, spaces, unicode and reserved URL characters', () => {
    for (const name of [
      'a',
      'dir/sub/file.txt',
      'with space.bin',
      'ünï cødé/🚀.txt',
      'q?x#y%z&+',
      'a//b',
      'back\\slash',
    ]) {
      validateBlobName(name);
    }
    validateBlobName('x'.repeat(1024));
    validateBlobName(Array.from({ length: 254 }, () => 'a').join('/'));
  });
  it('refuses empty, too long, trailing dot or slash, dot segments, control characters, lone surrogates', () => {
    const bad = [
      '',
      'x'.repeat(1025),
      Array.from({ length: 255 }, () => 'a').join('/'),
      'name.',
      'dir/',
      '../other-container/x',
      'a/./b',
      'a/../b',
      '..',
      'tab\there',
      'nul\u0000',
      'del\u007f',
      'lone\ud800surrogate',
    ];
    for (const name of bad) assert.throws(() => validateBlobName(name), invalidName, JSON.stringify(name));
  });
});

describe('container policy', () => {
  it('"*" allows every container except the host\'s own', () => {
    const policy = ContainerPolicy.fromSetting('*');
    assert.equal(policy.isAllowed('anything'), true);
    assert.equal(policy.isAllowed('azure-webjobs-hosts'), false);
    assert.equal(policy.isAllowed('azure-webjobs-secrets'), false);
    assert.throws(
      () => policy.assertAllowed('azure-webjobs-hosts'),
      (e) => isCseError(e, 'ContainerNotAllowed'),
    );
  });
  it('a list allows exactly its members; bad names are refused before the policy', () => {
    const policy = ContainerPolicy.fromSetting(' docs , images ');
    assert.equal(policy.isAllowed('docs'), true);
    assert.equal(policy.isAllowed('images'), true);
    assert.throws(
      () => policy.assertAllowed('other'),
      (e) => isCseError(e, 'ContainerNotAllowed'),
    );
    assert.throws(() => policy.assertAllowed('Bad_Name'), invalidName);
  });
  it('refuses an invalid container name in the setting itself', () => {
    assert.throws(() => ContainerPolicy.fromSetting('ok,NOT_OK'), invalidName);
  });
});
