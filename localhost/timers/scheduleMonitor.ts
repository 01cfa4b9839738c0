/**
 * Schedule status, kept where the Functions host keeps it (StorageScheduleMonitor): the blob
 * `azure-webjobs-hosts/timers/{hostId}/{timerName}/status` holding `{"Last","Next","LastUpdated"}`. It is what
 * makes a run that was due while the host was down happen at the next start, with `isPastDue`.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { Logger } from '../log';

export interface ScheduleStatus {
  Last: Date;
  Next: Date;
  LastUpdated: Date;
}

/** .NET's default(DateTime), written for "never". */
export const DEFAULT_DATE = new Date('0001-01-01T00:00:00Z');
/** Dates at or before this count as "never" (DefaultDateTimeThreshold). */
const DEFAULT_THRESHOLD = Date.UTC(1900, 0, 1);

export function isSet(date: Date): boolean {
  return date.getTime() > DEFAULT_THRESHOLD;
}

export class ScheduleMonitor {
  readonly #container: ContainerClient;
  readonly #hostId: string;
  readonly #logger: Logger;
  #containerReady = false;

  constructor(container: ContainerClient, hostId: string, logger: Logger) {
    this.#container = container;
    this.#hostId = hostId;
    this.#logger = logger;
  }

  statusBlobName(timerName: string): string {
    return `timers/${this.#hostId}/${timerName}/status`;
  }

  /** The stored status, or undefined if none (or unreadable: GetSafeStatusAsync treats errors as none). */
  async getStatus(timerName: string): Promise<ScheduleStatus | undefined> {
    try {
      const blob = this.#container.getBlockBlobClient(this.statusBlobName(timerName));
      const text = (await blob.downloadToBuffer()).toString('utf8');
      const json = JSON.parse(text) as Record<string, unknown>;
      const date = (v: unknown): Date =>
        typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? new Date(v) : DEFAULT_DATE;
      return { Last: date(json.Last), Next: date(json.Next), LastUpdated: date(json.LastUpdated) };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) {
        this.#logger.warn(`Could not read the schedule status of ${timerName}: ${(error as Error).message}`);
      }
      return undefined;
    }
  }

  /** Stores the status (best effort, as in the host: a failure is logged, not thrown). */
  async updateStatus(timerName: string, status: ScheduleStatus): Promise<void> {
    try {
      if (!this.#containerReady) {
        await this.#container.createIfNotExists();
        this.#containerReady = true;
      }
      const text = JSON.stringify({
        Last: status.Last.toISOString(),
        Next: status.Next.toISOString(),
        LastUpdated: status.LastUpdated.toISOString(),
      });
      await this.#container.getBlockBlobClient(this.statusBlobName(timerName)).upload(text, Buffer.byteLength(text), {
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
    } catch (error) {
      this.#logger.error(
        `Function '${timerName}' failed to update the timer trigger status: ${(error as Error).message}`,
      );
    }
  }

  /**
   * ScheduleMonitor.CheckPastDueAsync: records an initial status for a new timer; re-bases the status if the
   * schedule changed; returns how long past due the recorded next occurrence is (0 when not past due).
   */
  async checkPastDue(
    timerName: string,
    now: Date,
    next: (after: Date) => Date,
    last: ScheduleStatus | undefined,
  ): Promise<{ status: ScheduleStatus; pastDueMs: number }> {
    let status: ScheduleStatus;
    if (last === undefined) {
      status = { Last: DEFAULT_DATE, Next: next(now), LastUpdated: now };
      await this.updateStatus(timerName, status);
    } else {
      status = { ...last };
      let expected: Date;
      let lastUpdated: Date;
      if (isSet(last.Last)) {
        expected = next(last.Last);
        lastUpdated = last.Last;
      } else if (isSet(last.LastUpdated)) {
        expected = next(last.LastUpdated);
        lastUpdated = last.LastUpdated;
      } else {
        expected = next(now);
        lastUpdated = now;
      }
      if (last.Next.getTime() !== expected.getTime()) {
        // The schedule changed since the status was written: re-base it, and do not call a changed schedule's
        // missed occurrence past due.
        if (now.getTime() > expected.getTime()) {
          expected = next(now);
          lastUpdated = now;
        }
        status = { Last: DEFAULT_DATE, Next: expected, LastUpdated: lastUpdated };
        await this.updateStatus(timerName, status);
      }
    }
    const pastDueMs = now.getTime() - status.Next.getTime();
    return { status, pastDueMs: pastDueMs > 0 ? pastDueMs : 0 };
  }
}
