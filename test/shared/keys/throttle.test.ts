import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  KeyVaultThrottledError,
  ThrottleGate,
  parseRetryAfter,
  throttleDetectionPolicy,
} from '../../../shared/keys/throttle';
import { isCseError } from '../../../shared/errors';

function headers(values: Record<string, string>) {
  return { get: (name: string) => values[name.toLowerCase()] };
}

function fakeTimer() {
  let now = 0;
  const waits: number[] = [];
  return { waits, now: () => now, sleep: async (ms: number) => void (waits.push(ms), (now += ms)) };
}

describe('parseRetryAfter', () => {
  it('reads seconds, HTTP dates and the millisecond headers', () => {
    assert.equal(parseRetryAfter(headers({ 'retry-after': '7' })), 7000);
    assert.equal(parseRetryAfter(headers({ 'retry-after-ms': '250' })), 250);
    assert.equal(parseRetryAfter(headers({ 'x-ms-retry-after-ms': '1500', 'retry-after': '9' })), 1500);
    const date = new Date(Date.now() + 10_000).toUTCString();
    const fromDate = parseRetryAfter(headers({ 'retry-after': date })) ?? 0;
    assert.ok(fromDate > 8000 && fromDate <= 10_000, String(fromDate));
    assert.equal(parseRetryAfter(headers({ 'retry-after': 'soon' })), undefined);
    assert.equal(parseRetryAfter(headers({})), undefined);
  });
});

describe('throttleDetectionPolicy', () => {
  it('turns 429 (and 503 with Retry-After) into KeyVaultThrottledError, passes the rest', async () => {
    const send = (status: number, h: Record<string, string> = {}) =>
      throttleDetectionPolicy.sendRequest({}, async () => ({ status, headers: headers(h) }));
    await assert.rejects(
      send(429, { 'retry-after': '3' }),
      (e) => e instanceof KeyVaultThrottledError && e.retryAfterMs === 3000,
    );
    await assert.rejects(send(429), (e) => e instanceof KeyVaultThrottledError && e.retryAfterMs === undefined);
    await assert.rejects(send(503, { 'retry-after': '1' }), KeyVaultThrottledError);
    assert.equal(((await send(503)) as { status: number }).status, 503);
    assert.equal(((await send(200)) as { status: number }).status, 200);
  });
});

describe('ThrottleGate', () => {
  it('retries a throttled call after Retry-After', async () => {
    const timer = fakeTimer();
    const gate = new ThrottleGate('vault', { now: timer.now, sleep: timer.sleep });
    let calls = 0;
    const result = await gate.run('op', async () => {
      calls += 1;
      if (calls < 3) throw new KeyVaultThrottledError(2000, 429);
      return 'done';
    });
    assert.equal(result, 'done');
    assert.deepEqual(timer.waits, [2000, 2000]);
  });

  it('finds the signal in a cause chain and passes other errors through', async () => {
    const timer = fakeTimer();
    const gate = new ThrottleGate('vault', { now: timer.now, sleep: timer.sleep });
    let calls = 0;
    await gate.run('op', async () => {
      calls += 1;
      if (calls === 1) throw new Error('wrapped', { cause: new KeyVaultThrottledError(10, 429) });
    });
    assert.equal(calls, 2);
    await assert.rejects(
      gate.run('op', async () => {
        throw new TypeError('boom');
      }),
      TypeError,
    );
  });

  it('reports KeyUnavailable with retryAfterSeconds after maxRetries', async () => {
    const timer = fakeTimer();
    const gate = new ThrottleGate('https://v.vault.azure.net', { now: timer.now, sleep: timer.sleep, maxRetries: 1 });
    await assert.rejects(
      gate.run('unwrapKey', async () => {
        throw new KeyVaultThrottledError(1500, 429);
      }),
      (e) => isCseError(e, 'KeyUnavailable') && e.retryAfterSeconds === 2 && /v\.vault\.azure\.net/.test(e.message),
    );
    assert.deepEqual(timer.waits, [1500]);
  });

  it('makes later calls wait for the vault, and fails them at once beyond the budget', async () => {
    const timer = fakeTimer();
    const gate = new ThrottleGate('vault', { now: timer.now, sleep: timer.sleep, maxRetries: 0, maxWaitMs: 5000 });
    await assert.rejects(
      gate.run('op', async () => {
        throw new KeyVaultThrottledError(4000, 429);
      }),
      (e) => isCseError(e, 'KeyUnavailable'),
    );
    assert.equal(gate.waitMs, 4000);
    let ran = false;
    await gate.run('op', async () => void (ran = true));
    assert.ok(ran);
    assert.deepEqual(timer.waits, [4000], 'the second call waited for the vault first');

    await assert.rejects(
      gate.run('op', async () => {
        throw new KeyVaultThrottledError(60_000, 429);
      }),
      (e) => isCseError(e, 'KeyUnavailable') && e.retryAfterSeconds === 60,
    );
    let called = false;
    await assert.rejects(
      gate.run('op', async () => void (called = true)),
      (e) => isCseError(e, 'KeyUnavailable') && (e.retryAfterSeconds ?? 0) === 60,
    );
    assert.equal(called, false, 'not sent while the vault asked to wait longer than the budget');
  });
});
