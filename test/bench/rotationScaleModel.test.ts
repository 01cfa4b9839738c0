/** The scale model behind docs/SCALE.md: the closed form agrees with the event-by-event simulation. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { estimate, simulate, type ScaleParams } from '../../bench/rotationScaleModel';

const BASE: ScaleParams = {
  objects: 20_000,
  units: 4,
  pageSize: 200,
  listPageSeconds: 0.05,
  vaultOpsPer10s: 4000,
  vaults: 1,
  subscriptionOpsPer10s: 20_000,
  keyCallsPerObject: 1,
  instances: 2,
  concurrency: 16,
  itemsPerInstance: 24,
  storageSeconds: 0.01,
  keyCallSeconds: 0.015,
  storageRequestsPerSecond: 20_000,
  progressTxnSeconds: 0.02,
};

function agree(p: ScaleParams): { est: ReturnType<typeof estimate>; sim: ReturnType<typeof simulate> } {
  const est = estimate(p);
  const sim = simulate(p);
  const ratio = sim.objectsPerSecond / est.objectsPerSecond;
  assert.ok(
    ratio > 0.85 && ratio < 1.15,
    `${est.bottleneck}: simulated ${sim.objectsPerSecond} vs ${est.objectsPerSecond}`,
  );
  return { est, sim };
}

describe('rotation scale model', () => {
  it('a vault-bound rotation runs at the vault limit, throttled, and the simulation agrees', () => {
    const { est, sim } = agree({ ...BASE, vaultOpsPer10s: 500 });
    assert.equal(est.bottleneck, 'keyVault');
    assert.equal(est.objectsPerSecond, 50);
    assert.ok(sim.throttled > 0, 'the vault answered 429');
    assert.ok(sim.peakCallsPerInstance <= BASE.concurrency);
  });

  it('several vaults multiply the limit up to the subscription cap; two calls per object halve it', () => {
    assert.equal(estimate({ ...BASE, vaults: 3 }).objectsPerSecond, 1200);
    assert.equal(estimate({ ...BASE, vaults: 10 }).objectsPerSecond, 2000);
    assert.equal(estimate({ ...BASE, keyCallsPerObject: 2 }).limits.keyVault, 200);
    agree({ ...BASE, vaults: 3, vaultOpsPer10s: 500, subscriptionOpsPer10s: 2500 });
  });

  it('without throttling the key-call slots, then the progress record, bind; the simulation agrees', () => {
    const slots = agree({ ...BASE, vaultOpsPer10s: 1e9, subscriptionOpsPer10s: undefined, instances: 1 });
    assert.equal(slots.est.bottleneck, 'keyCallSlots');
    const record = agree({
      ...BASE,
      objects: 100_000,
      vaultOpsPer10s: 1e9,
      subscriptionOpsPer10s: undefined,
      instances: 16,
    });
    assert.equal(record.est.bottleneck, 'progressRecord');
  });

  it('counts every object once', () => {
    const sim = simulate({ ...BASE, objects: 1234, units: 3, pageSize: 100 });
    assert.equal(sim.keyCalls, 1234);
  });
});
