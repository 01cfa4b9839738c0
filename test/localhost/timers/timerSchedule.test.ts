import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTimerSchedule, usesMonitor } from '../../../localhost/timers/timerSchedule';

/** Local-time date (schedules run in the process's time zone). */
const local = (y: number, m: number, d: number, h = 0, min = 0, s = 0) => new Date(y, m - 1, d, h, min, s);

describe('timer schedules', () => {
  it('reads six-field NCRONTAB with day-of-month AND day-of-week (Friday the 13th only)', () => {
    const schedule = parseTimerSchedule('0 0 9 13 * 5', 'test');
    const runs: Date[] = [];
    let at = local(2024, 1, 1);
    for (let i = 0; i < 3; i++) runs.push((at = schedule.next(at)));
    // 2024: September 13 and December 13 are Fridays; 2025: June 13.
    assert.deepEqual(runs, [local(2024, 9, 13, 9), local(2024, 12, 13, 9), local(2025, 6, 13, 9)]);
  });

  it('has second precision and returns occurrences strictly after the base time', () => {
    const schedule = parseTimerSchedule('*/15 * * * * *', 'test');
    assert.deepEqual(schedule.next(local(2024, 5, 5, 10, 0, 0)), local(2024, 5, 5, 10, 0, 15));
    assert.deepEqual(schedule.next(local(2024, 5, 5, 10, 0, 14)), local(2024, 5, 5, 10, 0, 15));
  });

  it('reads a TimeSpan as a constant interval', () => {
    const schedule = parseTimerSchedule('01:30:00', 'test');
    assert.equal(schedule.kind, 'constant');
    assert.deepEqual(schedule.next(local(2024, 1, 1, 0)), local(2024, 1, 1, 1, 30));
  });

  it('rejects five-field cron, Quartz extensions and nonsense, naming where', () => {
    assert.throws(
      () => parseTimerSchedule('0 9 * * *', "Function 'f' (schedule)"),
      /Function 'f' \(schedule\): .*neither/,
    );
    assert.throws(() => parseTimerSchedule('0 0 9 L * *', 'f'), /NCRONTAB does not support/);
    assert.throws(() => parseTimerSchedule('0 0 9 ? * MON', 'f'), /NCRONTAB does not support/);
    assert.throws(() => parseTimerSchedule('0 0 25 * * *', 'f'), /not a valid NCRONTAB expression/);
    assert.throws(() => parseTimerSchedule('tomorrow', 'f'), /neither/);
  });

  it('accepts month and day names', () => {
    const schedule = parseTimerSchedule('0 0 12 * JUL WED', 'f');
    assert.deepEqual(schedule.next(local(2024, 1, 1)), local(2024, 7, 3, 12));
  });

  it('turns the schedule monitor off for schedules firing more than once a minute', () => {
    assert.equal(usesMonitor(parseTimerSchedule('*/30 * * * * *', 'f'), undefined), false);
    assert.equal(usesMonitor(parseTimerSchedule('00:00:10', 'f'), true), false);
    assert.equal(usesMonitor(parseTimerSchedule('0 */5 * * * *', 'f'), undefined), true);
    assert.equal(usesMonitor(parseTimerSchedule('0 0 3 * * *', 'f'), false), false);
  });
});
