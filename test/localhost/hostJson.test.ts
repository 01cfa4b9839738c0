import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { parseHostJson } from '../../localhost/hostJson';
import { parseTimeSpan } from '../../localhost/timeSpan';

describe('host.json', () => {
  it('uses the host defaults when nothing is set', () => {
    const json = parseHostJson({ version: '2.0' });
    assert.equal(json.routePrefix, 'api');
    assert.deepEqual(json.queues, {
      batchSize: 16,
      newBatchThreshold: 8 * availableParallelism(),
      maxPollingIntervalMs: 60_000,
      visibilityTimeoutMs: 0,
      maxDequeueCount: 5,
      messageEncoding: 'base64',
    });
  });

  it('reads the queue options and the route prefix', () => {
    const json = parseHostJson({
      version: '2.0',
      extensions: {
        http: { routePrefix: '' },
        queues: {
          batchSize: 4,
          newBatchThreshold: 2,
          maxPollingInterval: '00:00:02',
          visibilityTimeout: '00:00:05',
          maxDequeueCount: 3,
          messageEncoding: 'None',
        },
      },
    });
    assert.equal(json.routePrefix, '');
    assert.deepEqual(json.queues, {
      batchSize: 4,
      newBatchThreshold: 2,
      maxPollingIntervalMs: 2000,
      visibilityTimeoutMs: 5000,
      maxDequeueCount: 3,
      messageEncoding: 'none',
    });
  });

  it('rejects values the host would reject, naming them', () => {
    assert.throws(() => parseHostJson({}), /"version" must be "2.0"/);
    const queues = (q: object) => ({ version: '2.0', extensions: { queues: q } });
    assert.throws(() => parseHostJson(queues({ batchSize: 64 })), /batchSize must be an integer from 1 to 32/);
    assert.throws(() => parseHostJson(queues({ maxPollingInterval: '00:00:00.050' })), /maxPollingInterval/);
    assert.throws(() => parseHostJson(queues({ messageEncoding: 'utf8' })), /messageEncoding/);
    assert.throws(() => parseHostJson(queues({ maxDequeueCount: 0 })), /maxDequeueCount/);
  });

  it('parses TimeSpans', () => {
    assert.equal(parseTimeSpan('00:00:02'), 2000);
    assert.equal(parseTimeSpan('1.02:03:04.5'), ((24 + 2) * 3600 + 3 * 60 + 4) * 1000 + 500);
    assert.equal(parseTimeSpan('00:01'), 60_000);
    assert.equal(parseTimeSpan('00:60:00'), undefined);
    assert.equal(parseTimeSpan('5 minutes'), undefined);
  });
});
