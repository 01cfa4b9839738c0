/**
 * A timer trigger's listener, after WebJobs TimerListener (ECOSYSTEM.md §2.2): on start, a run that was due
 * while the host was down happens at once with `isPastDue` (when the schedule monitor applies), else
 * `runOnStartup` runs at once, else the schedule starts. Invocations of one timer never overlap (the next one is
 * scheduled after the current one ends), function errors never stop the schedule, and the status is stored
 * after every run.
 */
import type { RegisteredFunction } from '../coreApi';
import type { InvocationInit, InvocationOutcome } from '../invoker';
import { errorMessage, type Logger } from '../log';
import { DEFAULT_DATE, type ScheduleMonitor, type ScheduleStatus } from './scheduleMonitor';
import type { TimerSchedule } from './timerSchedule';

export interface TimerListenerInit {
  readonly fn: RegisteredFunction;
  readonly triggerBindingName: string;
  readonly schedule: TimerSchedule;
  readonly runOnStartup: boolean;
  /** The status store, or undefined when the monitor does not apply (no past-due detection). */
  readonly monitor: ScheduleMonitor | undefined;
  readonly invoke: (fn: RegisteredFunction, init: InvocationInit) => Promise<InvocationOutcome>;
  readonly completeOutputs: (outcome: InvocationOutcome) => Promise<void>;
  readonly logger: Logger;
}

type Startup = { kind: 'pastDue'; originalSchedule: Date } | { kind: 'runOnStartup' } | undefined;

/** setTimeout's limit; longer waits are re-armed in steps (the host does the same with System.Timers.Timer). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class TimerListener {
  readonly #init: TimerListenerInit;
  readonly #timerName: string;
  #status: ScheduleStatus | undefined;
  #startup: Startup;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(init: TimerListenerInit) {
    this.#init = init;
    // The host's lookup name for a function's timer (the status blob path uses it).
    this.#timerName = `Host.Functions.${init.fn.metadata.name}`;
  }

  get functionName(): string {
    return this.#init.fn.metadata.name;
  }

  get scheduleText(): string {
    return this.#init.schedule.text;
  }

  async start(): Promise<void> {
    const { monitor, schedule, logger } = this.#init;
    const now = new Date();
    let pastDue = false;
    if (monitor) {
      const stored = await monitor.getStatus(this.#timerName);
      const checked = await monitor.checkPastDue(this.#timerName, now, (d) => schedule.next(d), stored);
      this.#status = checked.status;
      pastDue = checked.pastDueMs > 0;
    }
    this.#status ??= { Last: DEFAULT_DATE, Next: schedule.next(now), LastUpdated: DEFAULT_DATE };
    logger.info(
      `Timer ${this.functionName}: schedule "${schedule.text}"; next occurrences: ` +
        nextOccurrences(schedule, now, 3)
          .map((d) => d.toISOString())
          .join(', '),
    );
    if (pastDue) {
      this.#startup = { kind: 'pastDue', originalSchedule: this.#status.Next };
      this.#arm(0);
    } else if (this.#init.runOnStartup) {
      this.#startup = { kind: 'runOnStartup' };
      this.#arm(0);
    } else {
      this.#armForNext();
    }
  }

  /** Stops the schedule and waits (up to `graceMs`) for a running invocation. */
  async stop(graceMs: number): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#running) {
      const timer = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([this.#running, timer]);
    }
  }

  #armForNext(): void {
    const next = this.#status?.Next ?? this.#init.schedule.next(new Date());
    this.#arm(Math.max(0, next.getTime() - Date.now()));
  }

  #arm(ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    if (ms > MAX_TIMER_MS) {
      this.#timer = setTimeout(() => this.#arm(ms - MAX_TIMER_MS), MAX_TIMER_MS);
      return;
    }
    this.#timer = setTimeout(() => {
      this.#running = this.#onTimer().finally(() => {
        this.#running = undefined;
        this.#armForNext();
      });
    }, ms);
  }

  async #onTimer(): Promise<void> {
    const startup = this.#startup;
    this.#startup = undefined;
    try {
      if (startup?.kind === 'pastDue') {
        this.#init.logger.info(`Timer ${this.functionName} is past due.`);
        await this.#invoke(new Date(), { isPastDue: true, originalSchedule: startup.originalSchedule });
      } else if (startup?.kind === 'runOnStartup') {
        await this.#invoke(new Date(), { runOnStartup: true });
      } else {
        await this.#invoke(new Date(), {});
      }
    } catch (error) {
      // Background errors never stop the schedule.
      this.#init.logger.error(`Error during scheduled invocation of '${this.functionName}': ${errorMessage(error)}`);
    }
  }

  async #invoke(
    invocationTime: Date,
    how: { isPastDue?: boolean; runOnStartup?: boolean; originalSchedule?: Date },
  ): Promise<void> {
    if (this.#stopped) return;
    const { fn, monitor, schedule } = this.#init;
    const status = this.#status;
    const timerInfo = {
      Schedule: { AdjustForDST: true },
      ScheduleStatus: monitor && status ? serialize(status) : null,
      IsPastDue: how.isPastDue === true,
    };
    const reason = how.isPastDue ? 'IsPastDue' : how.runOnStartup ? 'RunOnStartup' : 'Timer fired';
    try {
      const outcome = await this.#init.invoke(fn, {
        reason: `${reason} at ${invocationTime.toISOString()}`,
        inputData: [{ name: this.#init.triggerBindingName, data: { json: JSON.stringify(timerInfo) } }],
        triggerMetadata: {},
      });
      await this.#init.completeOutputs(outcome);
    } catch {
      // Function errors are logged by the invoker and never stop the schedule.
    }
    // A fire slightly before the scheduled time is moved forward so that `Next` never repeats.
    let adjusted = invocationTime;
    if (!how.isPastDue && !how.runOnStartup && status && status.Next.getTime() > invocationTime.getTime()) {
      adjusted = status.Next;
    }
    this.#status = { Last: adjusted, Next: schedule.next(adjusted), LastUpdated: adjusted };
    if (monitor) await monitor.updateStatus(this.#timerName, this.#status);
  }
}

function serialize(status: ScheduleStatus): Record<string, string> {
  return {
    Last: status.Last.toISOString(),
    Next: status.Next.toISOString(),
    LastUpdated: status.LastUpdated.toISOString(),
  };
}

function nextOccurrences(schedule: TimerSchedule, from: Date, count: number): Date[] {
  const out: Date[] = [];
  let at = from;
  for (let i = 0; i < count; i++) {
    at = schedule.next(at);
    out.push(at);
  }
  return out;
}
