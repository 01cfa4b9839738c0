/**
 * Rotations that start themselves, through the local host's timer and queue listeners, against Azurite and the
 * Key Vault stand-in (the app talks to it as to Key Vault: versionless key id, challenge authentication, token
 * from the managed identity endpoint):
 *
 *  - a schedule of two seconds: all current -> one line and nothing else; after the key gets a new version the
 *    timer starts a rotation by itself and it completes; ticks while it runs start nothing;
 *  - Key Vault events on key-events: a new version of the configured versionless key starts a rotation to it;
 *    other keys, other vaults, other event types and a versioned CSE_KEY_ID start nothing; a malformed event
 *    ends in key-events-poison;
 *  - Key Vault limits: CSE_ROTATION_CONCURRENCY bounds the unwraps in flight of the whole worker (several work
 *    items at once), and a 429 storm longer than the in-process retry budget slows the rotation down without a
 *    single failed object (with maxDequeueCount 1, a single failed delivery would poison a work item).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  keyNewVersionEvent,
  sendKeyEvent,
  startAppHost,
  startCountingProxy,
  startTriggerEnv,
  storedKeyIds,
  type AppHost,
  type TriggerEnv,
} from './rotationTriggersHarness';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('rotations that start themselves (local host, Key Vault stand-in)', () => {
  let env: TriggerEnv;
  /** Hosts share one Azurite, hence the rotation queues: every test stops its hosts, pass or fail. */
  const hosts: AppHost[] = [];
  before(async () => {
    env = await startTriggerEnv();
  });
  afterEach(async () => {
    for (const h of hosts.splice(0)) await h.host.stop();
    env.kv.clearThrottle();
  });
  after(() => env?.stop());

  async function host(settings: Record<string, string>, options: { maxDequeueCount?: number } = {}): Promise<AppHost> {
    const h = await startAppHost(env, settings, options);
    hosts.push(h);
    return h;
  }

  async function stop(h: AppHost): Promise<void> {
    hosts.splice(hosts.indexOf(h), 1);
    await h.host.stop();
  }

  it('the schedule: nothing while all is current; after a new key version it starts one rotation, which completes', async () => {
    const v1 = env.kv.createKey('timer-kek');
    const h = await host({
      CSE_KEY_ID: env.kv.keyId('timer-kek'),
      CSE_CONTAINERS: 'timer-c',
      CSE_TABLES: 'notablesfortimer',
      CSE_ROTATION_SCHEDULE: '*/2 * * * * *',
    });
    for (let i = 0; i < 20; i++) await h.put('timer-c', `b${i}`, `content ${i}`);

    const idle = h.host.logs.length;
    await h.waitForLog(
      new RegExp(`Scheduled rotation check: all 20 encrypted objects are under ${escape(v1.kid)}; nothing to rotate`),
      idle,
    );
    assert.deepEqual(await h.rotations(), [], 'nothing started while everything is current');

    // CSE_KEY_ID is versionless: a new version changes the key it names. Unwraps are throttled for a while, so
    // the rotation is still running at the next ticks.
    const v2 = env.kv.rotateKey('timer-kek');
    env.kv.throttle({ operations: ['unwrapKey'], durationMs: 5000, retryAfterSeconds: 1 });
    const mark = h.host.logs.length;
    const started = await h.waitForLog(
      new RegExp(`started rotation (\\S+) to ${escape(v2.kid)}, because blob:timer-c/b\\d+ is under ${escape(v1.kid)}`),
      mark,
    );
    const id = /started rotation (\S+) to/.exec(started)?.[1] ?? '';
    await h.waitForLog(new RegExp(`rotation ${id} is running \\(to ${escape(v2.kid)}\\); nothing started`), mark);

    const view = await h.waitFinished(id);
    assert.equal(view.status, 'completed', JSON.stringify(view.failures));
    assert.equal(view.targetKeyId, v2.kid);
    assert.equal(view.counts.scanned, 20);
    assert.equal(view.counts.rewrapped, 20);
    assert.equal(view.counts.failed, 0);
    assert.deepEqual(
      (await h.rotations()).map((r) => r.id),
      [id],
      'exactly one rotation: the ticks while it ran started nothing',
    );
    for (const [name, keyId] of await storedKeyIds(env.blobs, 'timer-c')) assert.equal(keyId, v2.kid, name);
    const read = await h.get('/api/blobs/timer-c/b7');
    assert.equal(await read.text(), 'content 7');

    const done = h.host.logs.length;
    await h.waitForLog(new RegExp(`all 20 encrypted objects are under ${escape(v2.kid)}; nothing to rotate`), done);
    assert.equal((await h.rotations()).length, 1);
    await stop(h);
  });

  it('Key Vault events: a new version of the versionless CSE_KEY_ID starts a rotation to it; nothing else does', async () => {
    const v1 = env.kv.createKey('event-kek');
    env.kv.createKey('other-kek');
    const h = await host(
      { CSE_KEY_ID: env.kv.keyId('event-kek'), CSE_CONTAINERS: 'event-c', CSE_TABLES: 'notablesforevents' },
      { maxDequeueCount: 2 },
    );
    for (let i = 0; i < 10; i++) await h.put('event-c', `b${i}`, `content ${i}`);
    const earlier = (await h.rotations()).map((r) => r.id); // other tests' rotations (one rotations table)

    const ignored: [object | string, RegExp][] = [
      [
        keyNewVersionEvent(env.kv.rotateKey('other-kek').kid),
        /ignored: new version .*other-kek.* is not of CSE_KEY_ID's key/,
      ],
      [
        keyNewVersionEvent('https://another-vault.vault.azure.net/keys/event-kek/0123456789abcdef0123456789abcdef'),
        /ignored: new version https:\/\/another-vault\.vault\.azure\.net\/keys\/event-kek\/.* is not of CSE_KEY_ID's key/,
      ],
      [
        keyNewVersionEvent(v1.kid, 'Microsoft.KeyVault.KeyNearExpiry'),
        /ignored: event type Microsoft\.KeyVault\.KeyNearExpiry/,
      ],
    ];
    for (const [event, pattern] of ignored) {
      const mark = h.host.logs.length;
      await sendKeyEvent(env.queues, event);
      await h.waitForLog(pattern, mark);
    }

    // Malformed: no key id. Retried, then moved to key-events-poison; nothing started.
    const mark = h.host.logs.length;
    await sendKeyEvent(env.queues, { eventType: 'Microsoft.KeyVault.KeyNewVersionCreated', data: { VaultName: 'kv' } });
    await h.waitForLog(/Key Vault event not handled .*InvalidMessage: .*data\.Id/, mark);
    const poison = env.queues.getQueueClient('key-events-poison');
    for (
      let i = 0;
      (await poison.exists()) === false || (await poison.peekMessages()).peekedMessageItems.length === 0;
      i++
    ) {
      assert.ok(i < 100, 'the malformed event reaches key-events-poison');
      await sleep(200);
    }
    assert.deepEqual(
      (await h.rotations()).map((r) => r.id),
      earlier,
      'no event started a rotation',
    );

    const v2 = env.kv.rotateKey('event-kek');
    const before = h.host.logs.length;
    await sendKeyEvent(env.queues, keyNewVersionEvent(v2.kid));
    const line = await h.waitForLog(
      new RegExp(`Key Vault event: started rotation (\\S+) to ${escape(v2.kid)}`),
      before,
    );
    const id = /started rotation (\S+) to/.exec(line)?.[1] ?? '';
    const view = await h.waitFinished(id);
    assert.equal(view.status, 'completed');
    assert.equal(view.counts.rewrapped, 10);
    for (const [name, keyId] of await storedKeyIds(env.blobs, 'event-c')) assert.equal(keyId, v2.kid, name);
    await stop(h);

    // A versioned CSE_KEY_ID pins the version: key events are logged and ignored.
    const pinned = await host({ CSE_KEY_ID: v2.kid, CSE_CONTAINERS: 'event-c', CSE_TABLES: 'notablesforevents' });
    const v3 = env.kv.rotateKey('event-kek');
    const at = pinned.host.logs.length;
    await sendKeyEvent(env.queues, keyNewVersionEvent(v3.kid));
    await pinned.waitForLog(
      new RegExp(`ignored: new version ${escape(v3.kid)}: CSE_KEY_ID pins version ${v2.version}`),
      at,
    );
    assert.deepEqual(
      (await pinned.rotations()).map((r) => r.id),
      [id, ...earlier],
      'no rotation started by the event',
    );
    for (const [name, keyId] of await storedKeyIds(env.blobs, 'event-c')) assert.equal(keyId, v2.kid, name);
    await stop(pinned);
  });

  it('Key Vault limits: CSE_ROTATION_CONCURRENCY bounds unwraps per worker; a 429 storm slows the rotation, fails nothing', async () => {
    const proxy = await startCountingProxy(env.kv.url, 40);
    try {
      env.kv.createKey('limits-kek');
      const containers = ['limits-a', 'limits-b', 'limits-c'];
      const h = await host(
        {
          CSE_KEY_ID: `${proxy.url}/keys/limits-kek`,
          CSE_CONTAINERS: containers.join(','),
          CSE_TABLES: 'notablesforlimits',
          CSE_ROTATION_CONCURRENCY: '3',
        },
        { maxDequeueCount: 1 },
      );
      for (const c of containers) for (let i = 0; i < 12; i++) await h.put(c, `b${i}`, `${c} ${i}`);

      // Three containers: three work items at once in one worker, each allowed 3 objects at a time.
      const v2 = env.kv.rotateKey('limits-kek');
      proxy.reset();
      const first = await h.get('/api/rotations');
      assert.equal(first.status, 200);
      const res = await fetch(h.host.url('/api/rotations'), { method: 'POST' });
      assert.equal(res.status, 202);
      const { id } = (await res.json()) as { id: string };
      const view = await h.waitFinished(id);
      assert.equal(view.status, 'completed', JSON.stringify(view.failures));
      assert.equal(view.targetKeyId, `${proxy.url}/keys/limits-kek/${v2.version}`);
      assert.equal(view.counts.rewrapped, 36);
      assert.equal(proxy.unwraps, 36, 'one unwrap per object');
      assert.ok(proxy.peakUnwraps <= 3, `at most 3 unwraps in flight, saw ${proxy.peakUnwraps}`);
      assert.ok(proxy.peakUnwraps >= 2, `unwraps do run concurrently, saw ${proxy.peakUnwraps}`);

      // A storm longer than the in-process budget (3 throttled attempts): jobs pause and come back.
      env.kv.rotateKey('limits-kek');
      env.kv.clearLog();
      env.kv.throttle({ operations: ['unwrapKey'], durationMs: 9000, retryAfterSeconds: 1 });
      const t0 = Date.now();
      const mark = h.host.logs.length;
      const res2 = await fetch(h.host.url('/api/rotations'), { method: 'POST' });
      assert.equal(res2.status, 202);
      const { id: id2 } = (await res2.json()) as { id: string };
      const stormy = await h.waitFinished(id2, 180_000);
      const elapsed = Date.now() - t0;
      assert.equal(stormy.status, 'completed', JSON.stringify(stormy.failures));
      assert.equal(stormy.counts.failed, 0);
      assert.equal(stormy.counts.rewrapped, 36);
      assert.ok(env.kv.operations('unwrapKey', { status: 429 }).length > 0, 'the storm was felt');
      assert.ok(elapsed >= 8000, `the rotation waited the storm out (${elapsed} ms)`);
      assert.ok(
        h.host.logs.slice(mark).some((l) => /page job paused for \d+ s \(Key Vault throttling\)/.test(l)),
        `jobs were paused, not failed:\n${h.host.logs.slice(mark).join('\n').slice(-6000)}`,
      );
      const poison = env.queues.getQueueClient('rotation-jobs-poison');
      assert.ok(
        !(await poison.exists()) || (await poison.peekMessages()).peekedMessageItems.length === 0,
        'no work item poisoned',
      );
      await stop(h);
    } finally {
      env.kv.clearThrottle();
      await proxy.close();
    }
  });
});
