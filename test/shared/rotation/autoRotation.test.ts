/**
 * The decisions of the schedule and of Key Vault events, with a recording stand-in for RotationService (the
 * end-to-end behaviour through the local host's timer and queue listeners is in
 * test/functions/rotationTriggers.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isCseError } from '../../../shared/errors';
import type { KeyEncryptionKey } from '../../../shared/keys/kek';
import { parseKeyId, type KeyId } from '../../../shared/keys/keyId';
import {
  describeEventDecision,
  describeScheduleDecision,
  onKeyEvent,
  onSchedule,
  type AutoRotationDeps,
} from '../../../shared/rotation/autoRotation';
import { KEY_NEW_VERSION_CREATED } from '../../../shared/rotation/keyEvents';
import { RotationRunningError, type StartRotationRequest } from '../../../shared/rotation/rotationService';
import type { ProbeResult } from '../../../shared/rotation/staleProbe';
import { ZERO_COUNTS, type RotationStatus, type RotationView } from '../../../shared/rotation/types';

const VAULT = 'https://kv1.vault.azure.net';
const V1 = '0123456789abcdef0123456789abcdef';
const V2 = 'fedcba9876543210fedcba9876543210';

function keyId(text: string): KeyId {
  const parsed = parseKeyId(text);
  assert.ok(parsed.ok);
  return parsed.keyId;
}

function view(id: string, status: RotationStatus, targetKeyId: string): RotationView {
  return {
    id,
    targetKeyId,
    status,
    scope: { containers: [], tables: [] },
    reencryptV1: false,
    counts: ZERO_COUNTS,
    snapshotsUnderOldKeys: {},
    failures: [],
    startedAt: new Date().toISOString(),
    finishedAt: null,
  };
}

interface Fake {
  deps: AutoRotationDeps;
  starts: StartRotationRequest[];
  probes: { target: string; reencryptV1: boolean }[];
  refreshes: number;
}

function fake(options: {
  configured: string;
  current: string;
  newest?: RotationView;
  probe?: ProbeResult;
  reencryptV1?: boolean;
  startFails?: Error;
}): Fake {
  const f: Fake = { starts: [], probes: [], refreshes: 0, deps: undefined as unknown as AutoRotationDeps };
  f.deps = {
    service: {
      async start(request) {
        if (options.startFails) throw options.startFails;
        f.starts.push(request);
        return { id: 'r-new' };
      },
      async list(top) {
        assert.equal(top, 1);
        return options.newest ? [options.newest] : [];
      },
    },
    keys: {
      activeKeyId: keyId(options.configured),
      async activeKey(o) {
        if (o?.refresh) f.refreshes++;
        return { keyId: options.current } as KeyEncryptionKey;
      },
    },
    probe: async (target, o) => {
      f.probes.push({ target, reencryptV1: o.reencryptV1 });
      return options.probe ?? { kind: 'allCurrent', scanned: 0 };
    },
    reencryptV1: options.reencryptV1 ?? false,
  };
  return f;
}

function newVersionEvent(id: string): Record<string, unknown> {
  return { id: 'e1', eventType: KEY_NEW_VERSION_CREATED, subject: 'kek', data: { Id: id } };
}

describe('onSchedule', () => {
  it('starts nothing, and checks nothing, while a rotation is running', async () => {
    const f = fake({
      configured: `${VAULT}/keys/kek`,
      current: `${VAULT}/keys/kek/${V2}`,
      newest: view('r1', 'running', 'x'),
    });
    const d = await onSchedule(f.deps);
    assert.deepEqual(d, { kind: 'running', id: 'r1', targetKeyId: 'x' });
    assert.equal(f.probes.length, 0);
    assert.equal(f.starts.length, 0);
    assert.match(
      describeScheduleDecision(d),
      /^Scheduled rotation check: rotation r1 is running \(to x\); nothing started$/,
    );
  });

  it('does nothing when everything is under the current version (looked up now), and says so in one line', async () => {
    const current = `${VAULT}/keys/kek/${V2}`;
    const f = fake({
      configured: `${VAULT}/keys/kek`,
      current,
      newest: view('r0', 'completed', current),
      probe: { kind: 'allCurrent', scanned: 42 },
    });
    const d = await onSchedule(f.deps);
    assert.deepEqual(d, { kind: 'allCurrent', targetKeyId: current, scanned: 42 });
    assert.equal(f.refreshes, 1, 'the current version is looked up, not taken from a cache');
    assert.deepEqual(f.probes, [{ target: current, reencryptV1: false }]);
    assert.equal(f.starts.length, 0);
    assert.equal(describeScheduleDecision(d).split('\n').length, 1);
  });

  it('starts a rotation to the checked target when something is under another key, with CSE_ROTATION_REENCRYPT_V1', async () => {
    const current = `${VAULT}/keys/kek/${V2}`;
    const f = fake({
      configured: `${VAULT}/keys/kek`,
      current,
      reencryptV1: true,
      probe: { kind: 'found', object: 'blob:c/b', keyId: `${VAULT}/keys/kek/${V1}`, scanned: 3 },
    });
    const d = await onSchedule(f.deps);
    assert.equal(d.kind, 'started');
    assert.deepEqual(f.starts, [{ targetKeyId: current, reencryptV1: true }]);
    assert.deepEqual(f.probes, [{ target: current, reencryptV1: true }]);
    assert.match(describeScheduleDecision(d), /started rotation r-new to .*, because blob:c\/b is under .*\/0123/);
  });

  it('starts a rotation when the check runs out of time (the sweep decides), and reports a start that lost a race', async () => {
    const current = `${VAULT}/keys/kek/${V2}`;
    const undecided = fake({ configured: current, current, probe: { kind: 'undecided', scanned: 9 } });
    assert.equal((await onSchedule(undecided.deps)).kind, 'started');
    const raced = fake({
      configured: current,
      current,
      probe: { kind: 'undecided', scanned: 9 },
      startFails: new RotationRunningError('r9'),
    });
    assert.deepEqual(await onSchedule(raced.deps), { kind: 'running', id: 'r9', targetKeyId: '' });
  });
});

describe('onKeyEvent', () => {
  const versionless = `${VAULT}/keys/kek`;

  it('starts a rotation to the new version of the versionless CSE_KEY_ID while it is current', async () => {
    const f = fake({ configured: versionless, current: `${VAULT}/keys/kek/${V2}` });
    const d = await onKeyEvent(f.deps, newVersionEvent(`${VAULT}/keys/kek/${V2}`));
    assert.deepEqual(d, { kind: 'started', id: 'r-new', targetKeyId: `${VAULT}/keys/kek/${V2}` });
    assert.deepEqual(f.starts, [{ targetKeyId: `${VAULT}/keys/kek/${V2}` }]);
    assert.match(describeEventDecision(d), /^Key Vault event: started rotation r-new to /);
  });

  it('ignores a versioned CSE_KEY_ID, other keys, other vaults, local keys, other event types, superseded versions', async () => {
    const cases: [string, string, unknown, RegExp][] = [
      [
        `${VAULT}/keys/kek/${V1}`,
        `${VAULT}/keys/kek/${V1}`,
        newVersionEvent(`${VAULT}/keys/kek/${V2}`),
        /pins version/,
      ],
      [versionless, `${VAULT}/keys/kek/${V1}`, newVersionEvent(`${VAULT}/keys/other/${V2}`), /not of CSE_KEY_ID's key/],
      [
        versionless,
        `${VAULT}/keys/kek/${V1}`,
        newVersionEvent(`https://kv2.vault.azure.net/keys/kek/${V2}`),
        /not of CSE_KEY_ID's key/,
      ],
      ['local:kek-1', 'local:kek-1', newVersionEvent(`${VAULT}/keys/kek/${V2}`), /CSE_KEY_ID is a local key/],
      [
        versionless,
        `${VAULT}/keys/kek/${V1}`,
        { eventType: 'Microsoft.KeyVault.KeyNearExpiry', data: {} },
        /event type Microsoft\.KeyVault\.KeyNearExpiry/,
      ],
      [
        versionless,
        `${VAULT}/keys/kek/${V1}`,
        newVersionEvent(`${VAULT}/keys/kek/${V2}`),
        /no longer the current version/,
      ],
    ];
    for (const [configured, current, message, why] of cases) {
      const f = fake({ configured, current });
      const d = await onKeyEvent(f.deps, message);
      assert.equal(d.kind, 'ignored', String(why));
      assert.match(describeEventDecision(d), why);
      assert.equal(f.starts.length, 0, String(why));
    }
  });

  it('matches the key name without regard to case (Key Vault names are case-insensitive)', async () => {
    const f = fake({ configured: versionless, current: `${VAULT}/keys/KEK/${V2}` });
    assert.equal((await onKeyEvent(f.deps, newVersionEvent(`${VAULT}/keys/KEK/${V2}`))).kind, 'started');
  });

  it('starts nothing while a rotation runs, saying whether it already targets the new version', async () => {
    const target = `${VAULT}/keys/kek/${V2}`;
    const same = fake({
      configured: versionless,
      current: target,
      newest: view('r1', 'running', target),
      startFails: new RotationRunningError('r1'),
    });
    assert.match(describeEventDecision(await onKeyEvent(same.deps, newVersionEvent(target))), /already rotating to/);
    const other = fake({
      configured: versionless,
      current: target,
      newest: view('r1', 'running', `${VAULT}/keys/kek/${V1}`),
      startFails: new RotationRunningError('r1'),
    });
    assert.match(describeEventDecision(await onKeyEvent(other.deps, newVersionEvent(target))), /the schedule starts/);
  });

  it('throws InvalidMessage for a malformed event (the trigger lets it go to poison)', async () => {
    const f = fake({ configured: versionless, current: `${VAULT}/keys/kek/${V1}` });
    await assert.rejects(onKeyEvent(f.deps, { eventType: KEY_NEW_VERSION_CREATED, data: {} }), (e: unknown) =>
      isCseError(e, 'InvalidMessage'),
    );
    assert.equal(f.starts.length, 0);
  });
});
