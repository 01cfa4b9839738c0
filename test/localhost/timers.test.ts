import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { startLocalHost, testApp, type RunningLocalHost } from '../helpers/localHost';

interface TimerResult {
  event: string;
  at: number;
  running?: number;
  timer: {
    isPastDue: boolean;
    schedule: { adjustForDST: boolean };
    scheduleStatus: { last: string; next: string; lastUpdated: string } | null;
  };
}

function results(host: RunningLocalHost, name: string): TimerResult[] {
  return host.logs
    .filter((l) => l.includes('RESULT {'))
    .map((l) => JSON.parse(l.slice(l.indexOf('RESULT ') + 7)) as TimerResult)
    .filter((r) => r.event === name);
}

const HOST_ID = 'timer-tests';
const statusBlob = (fn: string): string => `timers/${HOST_ID}/Host.Functions.${fn}/status`;

/** Today 03:00 local time, moved by `days`. */
function at3am(days: number): Date {
  const d = new Date();
  d.setHours(3, 0, 0, 0);
  d.setDate(d.getDate() + days);
  return d;
}

describe('timer triggers', () => {
  let azurite: RunningAzurite;
  let host: RunningLocalHost;
  let blobs: BlobServiceClient;
  const missed = { Last: at3am(-3), Next: at3am(-2), LastUpdated: at3am(-3) };

  before(async () => {
    azurite = await startAzurite();
    blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
    // The daily timer last ran three days ago and its next run (two days ago) was missed: the host was down.
    const container = blobs.getContainerClient('azure-webjobs-hosts');
    await container.createIfNotExists();
    const status = JSON.stringify({
      Last: missed.Last.toISOString(),
      Next: missed.Next.toISOString(),
      LastUpdated: missed.LastUpdated.toISOString(),
    });
    await container.getBlockBlobClient(statusBlob('timerDaily')).upload(status, status.length);

    // Near midnight "today" would change under the test; wait it out.
    const now = new Date();
    const untilMidnight = new Date(now).setHours(24, 0, 0, 0) - now.getTime();
    if (untilMidnight < 10_000) await sleep(untilMidnight + 500);
    const today = new Date();
    const dom = today.getDate();
    const dow = today.getDay();
    host = await startLocalHost({
      main: testApp('timerApp'),
      storage: azurite.connectionString,
      env: {
        AzureFunctionsWebHost__hostid: HOST_ID,
        TEST_SCHEDULE_MATCH: `*/1 * * ${dom} * ${dow}`,
        TEST_SCHEDULE_MISMATCH: `*/1 * * ${dom} * ${(dow + 3) % 7}`,
        TEST_INTERVAL: '00:00:01',
      },
    });
    // Until the second-by-second timers have fired several times (a loaded machine may take longer).
    const deadline = Date.now() + 30_000;
    while (
      results(host, 'timerAndMatch').length < 3 ||
      results(host, 'timerSlow').length < 2 ||
      results(host, 'timerFailing').length < 3
    ) {
      if (Date.now() > deadline) throw new Error(`Timers did not fire:\n${host.logs.slice(-40).join('\n')}`);
      await sleep(100);
    }
  });
  after(async () => {
    await host?.stop();
    await azurite?.stop();
  });

  it('fires six-field NCRONTAB schedules to the second, with day-of-month AND day-of-week', () => {
    const fired = results(host, 'timerAndMatch');
    assert.ok(fired.length >= 3, `the matching schedule fired ${fired.length} times`);
    assert.equal(results(host, 'timerAndMismatch').length, 0, 'day-of-month alone is not enough');
    const first = fired[0]!;
    assert.equal(first.timer.isPastDue, false);
    assert.deepEqual(first.timer.schedule, { adjustForDST: true });
    assert.equal(first.timer.scheduleStatus, null, 'no schedule monitor for a schedule that fires every second');
  });

  it('runs a runOnStartup timer once at start, not past due', () => {
    const runs = results(host, 'timerOnStartup');
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.timer.isPastDue, false);
  });

  it('runs a missed occurrence at start with isPastDue, then records the new status', async () => {
    const runs = results(host, 'timerDaily');
    assert.equal(runs.length, 1);
    const run = runs[0]!;
    assert.equal(run.timer.isPastDue, true);
    assert.equal(Date.parse(run.timer.scheduleStatus!.next), missed.Next.getTime(), 'the status it was due by');
    assert.equal(Date.parse(run.timer.scheduleStatus!.last), missed.Last.getTime());

    const container = blobs.getContainerClient('azure-webjobs-hosts');
    const stored = JSON.parse(
      (await container.getBlockBlobClient(statusBlob('timerDaily')).downloadToBuffer()).toString(),
    );
    assert.ok(Math.abs(Date.parse(stored.Last) - run.at) < 5000, 'Last = when it ran');
    assert.equal(Date.parse(stored.Next), at3am(new Date().getHours() >= 3 ? 1 : 0).getTime(), 'Next = next 03:00');
  });

  it('does not run a timer with a fresh status at start, and records its next occurrence', async () => {
    assert.equal(results(host, 'timerWeekly').length, 0);
    const container = blobs.getContainerClient('azure-webjobs-hosts');
    const stored = JSON.parse(
      (await container.getBlockBlobClient(statusBlob('timerWeekly')).downloadToBuffer()).toString(),
    );
    const next = new Date(stored.Next);
    assert.equal(next.getDay(), 1);
    assert.equal(next.getHours(), 4);
    assert.equal(next.getMinutes(), 30);
    assert.ok(next.getTime() > Date.now());
  });

  it('never runs two invocations of one timer at once', () => {
    const runs = results(host, 'timerSlow');
    assert.ok(runs.length >= 2, `${runs.length} runs`);
    assert.ok(
      runs.every((r) => r.running === 1),
      `concurrent runs: ${runs.map((r) => r.running).join(',')}`,
    );
    for (let i = 1; i < runs.length; i++) {
      assert.ok(runs[i]!.at - runs[i - 1]!.at >= 1400, 'each run starts after the previous one ended');
    }
  });

  it('keeps a TimeSpan schedule running although every run fails', () => {
    const runs = results(host, 'timerFailing');
    assert.ok(runs.length >= 3, `${runs.length} runs`);
    assert.ok(host.logs.filter((l) => /Executed 'Functions.timerFailing' \(Failed/.test(l)).length >= 3);
  });
});
