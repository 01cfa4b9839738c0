/**
 * .NET TimeSpan text (`[d.]hh:mm[:ss[.fffffff]]`), the format host.json durations and timer schedules use.
 * Returns milliseconds, or undefined if the text is not a TimeSpan.
 */
export function parseTimeSpan(text: string): number | undefined {
  const m = /^\s*(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?\s*$/.exec(text);
  if (!m) return undefined;
  const [, days = '0', hours = '0', minutes = '0', seconds = '0', fraction = ''] = m;
  if (Number(hours) > 23 || Number(minutes) > 59 || Number(seconds) > 59) return undefined;
  const ms = Number((fraction + '000').slice(0, 3));
  return (((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000 + ms;
}
