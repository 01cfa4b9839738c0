import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareRoutePrecedence, compileRouteTemplate, matchRoute } from '../../../localhost/http/routeTemplate';

const compile = (t: string) => compileRouteTemplate(t, 'fn');

describe('route templates', () => {
  it('matches literals case-insensitively and decodes parameters', () => {
    assert.deepEqual(matchRoute(compile('items/{id}'), '/Items/a%2Fb'), { id: 'a/b' });
    assert.equal(matchRoute(compile('items/{id}'), '/items'), undefined);
    assert.equal(matchRoute(compile('items/{id}'), '/items/1/2'), undefined);
    assert.deepEqual(matchRoute(compile('/'), '/'), {});
  });

  it('matches catch-alls, including empty ones', () => {
    const t = compile('blobs/{container}/{*name}');
    assert.deepEqual(matchRoute(t, '/blobs/c/a/b/c.txt'), { container: 'c', name: 'a/b/c.txt' });
    assert.deepEqual(matchRoute(t, '/blobs/c'), { container: 'c', name: '' });
  });

  it('applies constraints and optional parameters', () => {
    const t = compile('v/{n:int}/{s:alpha:minlength(2)?}');
    assert.deepEqual(matchRoute(t, '/v/5'), { n: '5' });
    assert.deepEqual(matchRoute(t, '/v/5/ab'), { n: '5', s: 'ab' });
    assert.equal(matchRoute(t, '/v/5/a'), undefined);
    assert.equal(matchRoute(t, '/v/x'), undefined);
    assert.deepEqual(matchRoute(compile('g/{id:guid}'), '/g/9b2e0f5a-1c3d-4e5f-8a9b-0c1d2e3f4a5b'), {
      id: '9b2e0f5a-1c3d-4e5f-8a9b-0c1d2e3f4a5b',
    });
  });

  it('orders literal before constrained before plain before catch-all', () => {
    const sorted = ['items/{*rest}', 'items/{id}', 'items/latest', 'items/{id:int}']
      .map(compile)
      .sort(compareRoutePrecedence)
      .map((t) => t.template);
    assert.deepEqual(sorted, ['items/latest', 'items/{id:int}', 'items/{id}', 'items/{*rest}']);
  });

  it('rejects templates the host would reject', () => {
    assert.throws(() => compile('a/{*rest}/b'), /catch-all parameter that is not the last segment/);
    assert.throws(() => compile('a/{x}/{x}'), /uses the parameter "x" twice/);
    assert.throws(() => compile('a/{x:nosuch}'), /unsupported constraint "nosuch"/);
    assert.throws(() => compile('a/{x?}/b'), /optional parameter that is not the last segment/);
    assert.throws(() => compile('a//b'), /empty segment/);
  });
});
