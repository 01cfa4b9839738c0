/**
 * Keeps a received message invisible while its function runs: the Functions host renews the lease at half its
 * length (10 minutes, renewed every 5). Each renewal changes the pop receipt, so completion must wait for a
 * renewal in flight and then use the newest receipt; `stop()` does exactly that.
 */
import type { QueueClient } from '@azure/storage-queue';
import type { Logger } from '../log';

export class MessageLease {
  readonly #client: QueueClient;
  readonly #messageId: string;
  readonly #leaseSeconds: number;
  readonly #logger: Logger;
  #popReceipt: string;
  #nextVisibleOn: Date | undefined;
  #timer: NodeJS.Timeout | undefined;
  #renewal: Promise<void> = Promise.resolve();

  constructor(client: QueueClient, messageId: string, popReceipt: string, leaseSeconds: number, logger: Logger) {
    this.#client = client;
    this.#messageId = messageId;
    this.#popReceipt = popReceipt;
    this.#leaseSeconds = leaseSeconds;
    this.#logger = logger;
    // Half the lease, as the host does; short local leases keep at least 2 s of margin where they can.
    const leaseMs = leaseSeconds * 1000;
    const everyMs = Math.max(500, Math.min(leaseMs / 2, leaseMs - 2000));
    this.#timer = setInterval(() => {
      this.#renewal = this.#renewal.then(() => this.#renew());
    }, everyMs);
  }

  get popReceipt(): string {
    return this.#popReceipt;
  }

  get nextVisibleOn(): Date | undefined {
    return this.#nextVisibleOn;
  }

  /** Stops renewing; resolves once no renewal is in flight, so `popReceipt` is final. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#renewal;
  }

  async #renew(): Promise<void> {
    if (this.#timer === undefined) return;
    try {
      const r = await this.#client.updateMessage(this.#messageId, this.#popReceipt, undefined, this.#leaseSeconds);
      if (r.popReceipt) this.#popReceipt = r.popReceipt;
      this.#nextVisibleOn = r.nextVisibleOn;
    } catch (error) {
      // The message may come back to another listener; the function keeps running (the host does the same).
      this.#logger.warn(`Could not renew the lease of message ${this.#messageId}: ${(error as Error).message}`);
    }
  }
}
