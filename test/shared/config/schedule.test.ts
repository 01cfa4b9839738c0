import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Cron } from 'croner';
import { parseSchedule } from '../../../shared/config/schedule';

describe('parseSchedule (NCRONTAB, 6 fields, or hh:mm:ss)', () => {
  it('accepts what the Functions host accepts', () => {
    for (const text of [
      '0 0 3 * * *',
      '*/5 * * * * *',
      '0 30 9 * * 1-5',
      '0 0 0 1 JAN *',
      '0 0 9 13 * FRI',
      '0 0,30 8-18/2 * * *',
    ]) {
      const result = parseSchedule(text);
      assert.ok(result.ok && result.schedule.kind === 'ncrontab', text);
    }
    assert.deepEqual(parseSchedule('00:05:00'), {
      ok: true,
      schedule: { kind: 'interval', text: '00:05:00', milliseconds: 300_000 },
    });
    assert.deepEqual(parseSchedule('1.02:00:00'), {
      ok: true,
      schedule: { kind: 'interval', text: '1.02:00:00', milliseconds: 26 * 3600_000 },
    });
  });

  it('refuses what NCRONTAB does not have, or never fires', () => {
    const bad: [string, RegExp][] = [
      ['0 0 3 * *', /it has 5 fields/],
      ['0 0 3 * * * 2027', /it has 7 fields/],
      ['@daily', /it has 1 field\b/],
      ['0 0 3 ? * *', /does not support/],
      ['0 0 3 L * *', /does not support/],
      ['0 0 3 * * 5#2', /does not support/],
      ['0 0 24 * * *', /not a valid NCRONTAB expression/],
      ['0 61 * * * *', /not a valid NCRONTAB expression/],
      ['0 0 0 31 2 *', /never fires/],
      ['24:00:00', /not a valid hh:mm:ss interval/],
      ['00:60:00', /not a valid hh:mm:ss interval/],
      ['00:00:00', /never ends/],
    ];
    for (const [text, reason] of bad) {
      const result = parseSchedule(text);
      assert.ok(!result.ok, text);
      assert.match(result.reason, reason, text);
    }
  });

  it('day-of-month AND day-of-week (NCRONTAB), as croner with domAndDow gives it', () => {
    // Friday the 13th only: the local host evaluates schedules the same way.
    const job = new Cron('0 0 9 13 * 5', { mode: '6-part', domAndDow: true, paused: true });
    const next = job.nextRun(new Date('2026-01-01T00:00:00'));
    job.stop();
    assert.equal(next?.getDate(), 13);
    assert.equal(next?.getDay(), 5);
    assert.ok(parseSchedule('0 0 9 13 * 5').ok);
  });
});
