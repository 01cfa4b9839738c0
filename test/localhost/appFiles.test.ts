import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { expandBraces, resolveAppFiles } from '../../localhost/appFiles';

describe('app files (package.json main globs)', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'appfiles-'));
    for (const f of [
      'dist/functions/a.js',
      'dist/functions/b.js',
      'dist/functions/b.js.map',
      'dist/index.js',
      'dist/src/deep/c.js',
    ]) {
      mkdirSync(join(root, f, '..'), { recursive: true });
      writeFileSync(join(root, f), '');
    }
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('expands braces', () => {
    assert.deepEqual(expandBraces('dist/{index.js,functions/*.js}'), ['dist/index.js', 'dist/functions/*.js']);
    assert.deepEqual(expandBraces('a/{b,c{d,e}}'), ['a/b', 'a/cd', 'a/ce']);
  });

  it('resolves *, ** and braces relative to the root, sorted', () => {
    assert.deepEqual(
      resolveAppFiles(root, 'dist/functions/*.js').map((f) => f.slice(root.length + 1)),
      ['dist/functions/a.js', 'dist/functions/b.js'],
    );
    assert.deepEqual(
      resolveAppFiles(root, 'dist/{index.js,functions/a.js}').map((f) => f.slice(root.length + 1)),
      ['dist/functions/a.js', 'dist/index.js'],
    );
    assert.deepEqual(
      resolveAppFiles(root, 'dist/**/c.js').map((f) => f.slice(root.length + 1)),
      ['dist/src/deep/c.js'],
    );
    assert.deepEqual(resolveAppFiles(root, join(root, 'dist/index.js')), [join(root, 'dist/index.js')]);
  });

  it('fails clearly when nothing matches', () => {
    assert.throws(() => resolveAppFiles(root, 'build/*.js'), /No files match "build\/\*\.js".*npm run build/);
  });
});
