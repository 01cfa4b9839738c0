/**
 * CSE_ROTATION_SCHEDULE: a timer schedule as the Functions host reads it (ECOSYSTEM.md §2.2). First a 6-field
 * NCRONTAB expression `{second} {minute} {hour} {day} {month} {day-of-week}` (day-of-month AND day-of-week must
 * both match, unlike standard cron); failing that, a TimeSpan `hh:mm:ss` (or `d.hh:mm:ss`) constant interval.
 * NCRONTAB has no `?`, `L`, `W` or `#` and no `@daily`-style nicknames, so those are refused here even though
 * croner (used to validate the rest) would accept them.
 */
import { Cron } from 'croner';

export type RotationSchedule =
  | { readonly kind: 'ncrontab'; readonly text: string }
  | { readonly kind: 'interval'; readonly text: string; readonly milliseconds: number };

export type ScheduleParseResult = { ok: true; schedule: RotationSchedule } | { ok: false; reason: string };

export function parseSchedule(text: string): ScheduleParseResult {
  const interval = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})$/.exec(text);
  if (interval !== null) {
    const [, days, hours, minutes, seconds] = interval.map((v) => (v === undefined ? 0 : Number(v))) as number[];
    if ((hours as number) > 23 || (minutes as number) > 59 || (seconds as number) > 59) {
      return { ok: false, reason: `${JSON.stringify(text)} is not a valid hh:mm:ss interval` };
    }
    const milliseconds =
      ((((days as number) * 24 + (hours as number)) * 60 + (minutes as number)) * 60 + (seconds as number)) * 1000;
    if (milliseconds === 0) return { ok: false, reason: 'an interval of 00:00:00 never ends' };
    return { ok: true, schedule: { kind: 'interval', text, milliseconds } };
  }
  const fields = text.split(/\s+/);
  if (fields.length !== 6) {
    return {
      ok: false,
      reason: `${JSON.stringify(text)} is neither a 6-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}) nor an hh:mm:ss interval (it has ${fields.length} field${fields.length === 1 ? '' : 's'})`,
    };
  }
  if (
    /[?LW#]/i.test(
      text.replace(/\b(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT)\b/gi, ''),
    )
  ) {
    return { ok: false, reason: `${JSON.stringify(text)}: NCRONTAB does not support ?, L, W or #` };
  }
  let job: Cron | undefined;
  try {
    job = new Cron(text, { mode: '6-part', domAndDow: true, paused: true });
    if (job.nextRun() === null || job.nextRun() === undefined) {
      return { ok: false, reason: `${JSON.stringify(text)} never fires` };
    }
  } catch (error) {
    const detail = error instanceof Error ? error.message.replace(/^CronPattern: /, '') : String(error);
    return { ok: false, reason: `${JSON.stringify(text)} is not a valid NCRONTAB expression (${detail})` };
  } finally {
    job?.stop();
  }
  return { ok: true, schedule: { kind: 'ncrontab', text } };
}
