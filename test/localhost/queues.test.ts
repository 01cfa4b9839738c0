import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueServiceClient, type PeekedMessageItem, type QueueClient } from '@azure/storage-queue';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { startLocalHost, testApp, type RunningLocalHost } from '../helpers/localHost';

type Result = Record<string, unknown> & { event: string };

function results(host: RunningLocalHost, event: string): Result[] {
  return host.logs
    .filter((l) => l.includes('RESULT {'))
    .map((l) => JSON.parse(l.slice(l.indexOf('RESULT ') + 7)) as Result)
    .filter((r) => r.event === event);
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Peeks up to 32 messages; a queue that does not exist (yet) is empty. */
async function peek(name: string): Promise<PeekedMessageItem[]> {
  try {
    return (await queue(name).peekMessages({ numberOfMessages: 32 })).peekedMessageItems;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return [];
    throw error;
  }
}

/** Sends a message, creating the queue first (the test may run before the host's listener created it). */
async function send(name: string, text: string): Promise<{ messageId: string }> {
  await queue(name).createIfNotExists();
  return queue(name).sendMessage(text);
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** Every queue setting queueApp.ts names, each `<prefix>-<what>` (one set of queues per host). */
function queueAppEnv(prefix: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const what of ['ECHO', 'FAIL', 'HANG', 'SLOW', 'CONCURRENCY', 'FANOUT', 'FANOUT_TARGET']) {
    env[`TEST_QUEUE_${what}`] = `${prefix}-${what.toLowerCase().replace('_', '-')}`;
  }
  return env;
}

const hostJson = (queues: Record<string, unknown>): object => ({ version: '2.0', extensions: { queues } });

let azurite: RunningAzurite;
let service: QueueServiceClient;
const queue = (name: string): QueueClient => service.getQueueClient(name);

before(async () => {
  azurite = await startAzurite();
  service = QueueServiceClient.fromConnectionString(azurite.connectionString);
});
after(() => azurite?.stop());

describe('queues', { concurrency: true }, () => {
  describe('queue triggers', { concurrency: true }, () => {
    let host: RunningLocalHost;
    const names = {
      ...queueAppEnv('main'),
      TEST_QUEUE_ECHO: 'echo-q',
      TEST_QUEUE_FAIL: 'fail-q',
      TEST_QUEUE_SLOW: 'slow-q',
      TEST_QUEUE_CONCURRENCY: 'conc-q',
      TEST_QUEUE_FANOUT: 'fanout-q',
      TEST_QUEUE_FANOUT_TARGET: 'fanout-target-q',
    };
    before(async () => {
      // A message already dequeued more than maxDequeueCount (3) times before the host starts.
      const { messageId } = await send('echo-q', b64('worn out'));
      for (let i = 0; i < 4; i++) {
        const [m] = (await queue('echo-q').receiveMessages({ visibilityTimeout: 30 })).receivedMessageItems;
        assert.equal(m?.messageId, messageId);
        await queue('echo-q').updateMessage(m.messageId, m.popReceipt, undefined, 0);
      }
      host = await startLocalHost({
        main: testApp('queueApp'),
        storage: azurite.connectionString,
        hostJson: hostJson({
          batchSize: 2,
          newBatchThreshold: 1,
          maxDequeueCount: 3,
          maxPollingInterval: '00:00:00.500',
          visibilityTimeout: '00:00:00',
        }),
        leaseSeconds: 5,
        env: { ...names, TEST_SLOW_MS: '8000' },
      });
    });
    after(() => host?.stop());

    it('decodes base64 messages and passes the trigger metadata', async () => {
      const sent = await send('echo-q', b64('hello, queue'));
      const json = await send('echo-q', b64(JSON.stringify({ Greeting: 'hi', n: 2 })));
      const text = await until('echo of the text message', () =>
        results(host, 'received').find((r) => r.id === sent.messageId),
      );
      assert.equal(text.input, 'hello, queue');
      assert.equal(text.inputType, 'string');
      assert.equal(text.dequeueCount, 1);
      assert.equal(text.queueTrigger, 'hello, queue');
      assert.equal(text.popReceiptType, 'string');
      for (const field of ['insertionTime', 'expirationTime', 'nextVisibleTime']) {
        assert.ok(!Number.isNaN(Date.parse(String(text[field]))), `${field} is a date: ${String(text[field])}`);
      }
      const object = await until('echo of the JSON message', () =>
        results(host, 'received').find((r) => r.id === json.messageId),
      );
      assert.deepEqual(object.input, { Greeting: 'hi', n: 2 }, 'JSON bodies reach the handler parsed');
      // Succeeded messages are deleted.
      await until('the echo queue to empty', async () => ((await peek('echo-q')).length === 0 ? true : undefined));
    });

    it('moves a message dequeued more than maxDequeueCount times to poison without invoking', async () => {
      const [poisoned] = await until('the worn-out message in echo-q-poison', async () => {
        const items = await peek('echo-q-poison');
        const match = items.filter((m) => m.messageText === b64('worn out'));
        return match.length > 0 ? match : undefined;
      });
      assert.ok(poisoned);
      assert.equal(
        results(host, 'received').some((r) => r.input === 'worn out'),
        false,
      );
    });

    it('sends a message that is not valid base64 straight to poison, unchanged and uninvoked', async () => {
      const raw = 'this is not base64!';
      await send('echo-q', raw);
      const poisoned = await until('the raw message in echo-q-poison', async () => {
        const items = await peek('echo-q-poison');
        return items.find((m) => m.messageText === raw);
      });
      assert.equal(poisoned.dequeueCount, 0, 'a fresh message in the poison queue');
      await host.waitForLog(/not valid base64/);
      assert.equal(
        results(host, 'received').some((r) => String(r.input).includes('not base64')),
        false,
      );
    });

    it('retries a failing function up to maxDequeueCount, then moves the raw body to <queue>-poison', async () => {
      const body = b64(JSON.stringify({ id: 'poison-me' }));
      await send('fail-q', body);
      const poisoned = await until('the message in fail-q-poison', async () => {
        const [m] = await peek('fail-q-poison');
        return m;
      });
      assert.equal(poisoned.messageText, body, 'the poison copy is the original, still-encoded body');
      const attempts = results(host, 'attempt').map((r) => r.dequeueCount);
      assert.deepEqual(attempts, [1, 2, 3]);
      await host.waitForLog(/reached MaxDequeueCount of 3\. Moving message to queue 'fail-q-poison'/);
      assert.equal((await peek('fail-q')).length, 0);
    });

    it('renews the lease while a function runs longer than it (no redelivery), then deletes the message', async () => {
      await send('slow-q', b64('slow one'));
      await until('the slow function to finish', () => results(host, 'slow-finished')[0], 30_000);
      assert.equal(results(host, 'slow-started').length, 1, 'delivered once despite a 5 s lease and an 8 s run');
      await until('slow-q to empty', async () => ((await peek('slow-q')).length === 0 ? true : undefined));
    });

    it('writes output-binding messages: an array is one message per element, base64-encoded', async () => {
      await send('fanout-q', b64('seed'));
      const messages = await until('three messages in the target queue', async () => {
        const items = await peek('fanout-target-q');
        return items.length >= 3 ? items : undefined;
      });
      const decoded = messages.map((m) => Buffer.from(m.messageText, 'base64').toString('utf8'));
      assert.deepEqual(decoded, [JSON.stringify({ a: 1, from: 'seed' }), 'plain text', JSON.stringify({ b: [2] })]);
    });

    it('runs at most batchSize + newBatchThreshold invocations at once (2 + 1)', async () => {
      for (let i = 0; i < 9; i++) await send('conc-q', b64(`m${i}`));
      await until('nine invocations', () => (results(host, 'concurrency').length >= 9 ? true : undefined), 20_000);
      const peak = Math.max(...results(host, 'concurrency').map((r) => Number(r.running)));
      assert.ok(peak <= 3, `peak ${peak} must not exceed 3`);
      assert.ok(peak >= 2, `peak ${peak}: messages of a batch run concurrently`);
    });
  });

  describe('queue listener wake-up and batch limits', () => {
    it('polls at once when an output binding in the host writes to its queue, and honours batchSize 1', async () => {
      const host = await startLocalHost({
        main: testApp('queueWakeApp'),
        storage: azurite.connectionString,
        // A long polling ceiling: an idle listener backs off to many seconds between polls.
        hostJson: hostJson({ batchSize: 1, newBatchThreshold: 0, maxPollingInterval: '00:01:00' }),
        env: { TEST_QUEUE_SINK: 'sink-q' },
        verbose: true, // the listener logs why it polled
      });
      try {
        await sleep(2000); // idle: the listener is backing off
        const res = await fetch(host.url('/api/sink'), { method: 'POST', body: JSON.stringify(['a', 'b', 'c']) });
        assert.equal(res.status, 202);
        await until('three sink invocations', () => (results(host, 'sink').length >= 3 ? true : undefined));
        // The output binding woke the listener (a scheduled poll may still win the race for a message, so the
        // woken poll is asserted, not which poll found what).
        const from = host.logs.findIndex((l) => l.includes("Executed 'Functions.enqueueToSink' (Succeeded"));
        assert.ok(from >= 0);
        assert.ok(
          host.logs.slice(from - 1).some((l) => /Queue 'sink-q' polled \(woken\)/.test(l)),
          'a poll woken by the output binding',
        );
        assert.deepEqual(
          results(host, 'sink').map((r) => r.running),
          [1, 1, 1],
          'batchSize 1 with newBatchThreshold 0 runs one at a time',
        );
        assert.deepEqual(
          results(host, 'sink')
            .map((r) => r.input)
            .sort(),
          ['a', 'b', 'c'],
        );
      } finally {
        await host.stop();
      }
    });
  });

  describe('queue messages survive a host that stops mid-invocation', { concurrency: true }, () => {
    it('SIGKILL: the message becomes visible again when its lease expires', async () => {
      const host = await startLocalHost({
        main: testApp('queueApp'),
        storage: azurite.connectionString,
        hostJson: hostJson({ maxPollingInterval: '00:00:00.500' }),
        leaseSeconds: 3,
        env: { ...queueAppEnv('kill'), TEST_QUEUE_HANG: 'hang-kill-q' },
      });
      let killed;
      let messageId: string;
      try {
        ({ messageId } = await send('hang-kill-q', b64('in flight')));
        await host.waitForLog(/"event":"hang-started"/);
      } finally {
        killed = await host.kill();
      }
      assert.equal(killed.signal, 'SIGKILL');
      const [back] = await until('the message to be visible again', async () => {
        const items = (await queue('hang-kill-q').receiveMessages({ visibilityTimeout: 30 })).receivedMessageItems;
        return items.length > 0 ? items : undefined;
      });
      assert.equal(back?.messageId, messageId);
      assert.equal(back?.dequeueCount, 2, 'one delivery to the killed host, one now');
    });

    it('SIGTERM: after the shutdown grace the message is released at once, and a new host completes it', async () => {
      const env = { ...queueAppEnv('term'), TEST_QUEUE_HANG: 'hang-term-q' };
      const options = {
        main: testApp('queueApp'),
        storage: azurite.connectionString,
        hostJson: hostJson({ maxPollingInterval: '00:00:00.500' }),
        leaseSeconds: 60, // so that only the release, not the lease's expiry, can bring it back quickly
        shutdownSeconds: 1,
        env,
      };
      const first = await startLocalHost(options);
      let stopped;
      let messageId: string;
      try {
        ({ messageId } = await send('hang-term-q', b64('in flight')));
        await first.waitForLog(/"event":"hang-started"/);
      } finally {
        stopped = await first.stop('SIGTERM');
      }
      assert.equal(stopped.code, 0, 'clean exit');
      assert.ok(first.logs.some((l) => l.includes(`Abandoning message ${messageId}`)));
      const [visible] = await peek('hang-term-q');
      assert.equal(visible?.messageId, messageId, 'visible right after the host stopped');

      const second = await startLocalHost(options);
      try {
        const done = await until('the redelivered message to finish', () => results(second, 'hang-finished')[0]);
        assert.equal(done.dequeueCount, 2);
        await until('hang-term-q to empty', async () => ((await peek('hang-term-q')).length === 0 ? true : undefined));
      } finally {
        await second.stop();
      }
    });
  });
});
