/**
 * Test-only timer functions for test/localhost/timers.test.ts. Schedules come from settings (binding
 * expressions), so the test picks them; each invocation reports its timer input as a `RESULT {...}` log line.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { app, type InvocationContext, type Timer } from '@azure/functions';

function report(context: InvocationContext, timer: Timer, extra: Record<string, unknown> = {}): void {
  context.log(`RESULT ${JSON.stringify({ event: context.functionName, timer, at: Date.now(), ...extra })}`);
}

/** Day-of-month and day-of-week both match today: fires every second. */
app.timer('timerAndMatch', { schedule: '%TEST_SCHEDULE_MATCH%', handler: (t, c) => report(c, t) });

/** Day-of-month matches today but day-of-week does not: never fires under NCRONTAB's AND (it would under OR). */
app.timer('timerAndMismatch', { schedule: '%TEST_SCHEDULE_MISMATCH%', handler: (t, c) => report(c, t) });

/** Once a year, but also when the host starts. */
app.timer('timerOnStartup', { schedule: '0 0 0 1 1 *', runOnStartup: true, handler: (t, c) => report(c, t) });

/** Daily at 03:00: past due when the host was down at 03:00 (the test writes such a status before starting). */
app.timer('timerDaily', { schedule: '0 0 3 * * *', handler: (t, c) => report(c, t) });

/** Weekly, with a fresh status: must not run at start. */
app.timer('timerWeekly', { schedule: '0 30 4 * * 1', handler: (t, c) => report(c, t) });

/** Every second, each run taking 1.5 s: runs must never overlap. */
let running = 0;
app.timer('timerSlow', {
  schedule: '*/1 * * * * *',
  handler: async (t, c) => {
    running++;
    report(c, t, { running });
    await sleep(1500);
    running--;
  },
});

/** A TimeSpan schedule, whose every run fails: failures never stop the schedule. */
app.timer('timerFailing', {
  schedule: '%TEST_INTERVAL%',
  handler: (t, c) => {
    report(c, t);
    throw new Error('deliberate timer failure');
  },
});
