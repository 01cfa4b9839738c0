/**
 * Timer schedules as the Functions host reads them (ECOSYSTEM.md §2.2, CronSchedule.cs): a six-field NCRONTAB
 * expression `{second} {minute} {hour} {day} {month} {day-of-week}` in which day-of-month AND day-of-week must
 * both match (NCrontab; Vixie cron uses OR), or else a TimeSpan `hh:mm:ss` meaning a constant interval.
 * Occurrences are in the process's local time zone (TZ), as the host uses the machine's (UTC in Azure).
 */
import { Cron } from 'croner';
import { HostStartError } from '../errors';
import { parseTimeSpan } from '../timeSpan';

export interface TimerSchedule {
  readonly kind: 'cron' | 'constant';
  readonly text: string;
  /** The first occurrence strictly after `after`. */
  next(after: Date): Date;
}

export function parseTimerSchedule(text: string, where: string): TimerSchedule {
  const trimmed = text.trim();
  const fields = trimmed.split(/\s+/);
  if (fields.length === 6) {
    // NCRONTAB has none of Quartz's or Vixie's extensions; croner would accept them silently.
    // (Three-letter names such as JUL or WED are fine; a bare L or W is not.)
    if (/[?LW#@]/i.test(trimmed.replace(/[a-z]{3}/gi, 'x'))) {
      throw new HostStartError(`${where}: "${text}" uses ?, L, W, # or @, which NCRONTAB does not support.`);
    }
    let cron: Cron;
    try {
      cron = new Cron(trimmed, { domAndDow: true, paused: true, mode: '6-part' });
    } catch (cause) {
      throw new HostStartError(`${where}: "${text}" is not a valid NCRONTAB expression: ${(cause as Error).message}`);
    }
    return {
      kind: 'cron',
      text,
      next(after: Date): Date {
        const next = cron.nextRun(after);
        if (!next) throw new Error(`The schedule "${text}" has no occurrence after ${after.toISOString()}.`);
        return next;
      },
    };
  }
  const interval = parseTimeSpan(trimmed);
  if (interval !== undefined && interval > 0) {
    return { kind: 'constant', text, next: (after) => new Date(after.getTime() + interval) };
  }
  throw new HostStartError(
    `${where}: "${text}" is neither a six-field NCRONTAB expression ("{second} {minute} {hour} {day} {month} ` +
      '{day-of-week}") nor a TimeSpan "hh:mm:ss".',
  );
}

/**
 * Whether the schedule monitor (past-due detection) applies: the host turns it off for schedules that fire more
 * than once a minute, whatever `useMonitor` says.
 */
export function usesMonitor(schedule: TimerSchedule, useMonitor: boolean | undefined, now = new Date()): boolean {
  if (useMonitor === false) return false;
  const first = schedule.next(now);
  const second = schedule.next(first);
  return second.getTime() - first.getTime() >= 60_000;
}
