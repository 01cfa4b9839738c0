/**
 * A queue trigger's listener, after the WebJobs storage extension (QueueListener, QueueProcessor; ECOSYSTEM.md
 * §2.1): fetch `batchSize` messages under a lease, run them concurrently, fetch again only when at most
 * `newBatchThreshold` are still running, back off (randomized, exponential) while the queue is empty, renew
 * leases while functions run, delete on success, make visible again after `visibilityTimeout` on failure, and
 * move a message that failed `maxDequeueCount` times (or is not valid base64) to `<queue>-poison` unchanged.
 */
import { randomUUID } from 'node:crypto';
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import type { RegisteredFunction, RpcTypedData } from '../coreApi';
import type { QueuesOptions } from '../hostJson';
import type { InvocationInit, InvocationOutcome } from '../invoker';
import { errorMessage, type Logger } from '../log';
import type { StorageAccount } from '../storage';
import { RandomizedBackoff } from './backoff';
import { decodeMessageBody } from './messageEncoding';
import { MessageLease } from './messageLease';
import { poisonQueueName } from './queueNames';

export interface QueueListenerInit {
  readonly fn: RegisteredFunction;
  /** Name of the trigger binding (the invocation's input). */
  readonly triggerBindingName: string;
  /** `dataType: 'binary'` on the trigger: the handler gets a Buffer instead of text. */
  readonly binary: boolean;
  readonly queueName: string;
  readonly account: StorageAccount;
  readonly options: QueuesOptions;
  /** How long a received message stays invisible, renewed at half that while its function runs. */
  readonly leaseSeconds: number;
  /** Runs the function; rejects if it failed. */
  readonly invoke: (fn: RegisteredFunction, init: InvocationInit) => Promise<InvocationOutcome>;
  /** Writes the function's output bindings; rejects if that failed (which fails the invocation). */
  readonly completeOutputs: (outcome: InvocationOutcome) => Promise<void>;
  readonly logger: Logger;
}

type Settled = 'completed' | 'abandoned';

/** Why the listener polls: its first poll, the back-off elapsed, or an output binding wrote to its queue. */
type PollReason = 'start' | 'scheduled' | 'woken';

interface InFlight {
  done: Promise<void>;
  readonly lease: MessageLease;
  readonly message: DequeuedMessageItem;
  abandoned: boolean;
}

export class QueueListener {
  readonly #init: QueueListenerInit;
  readonly #client: QueueClient;
  readonly #poisonName: string | undefined;
  readonly #backoff: RandomizedBackoff;
  readonly #inFlight = new Set<InFlight>();
  #wake: (() => void) | undefined;
  #woken = false;
  #stopped = false;
  #signalStop: () => void = () => undefined;
  readonly #stopSignal = new Promise<void>((resolve) => (this.#signalStop = resolve));
  #loop: Promise<void> | undefined;
  #lastPollError = '';

  constructor(init: QueueListenerInit) {
    this.#init = init;
    this.#client = init.account.queueService.getQueueClient(init.queueName);
    this.#poisonName = poisonQueueName(init.queueName);
    this.#backoff = new RandomizedBackoff(init.options.maxPollingIntervalMs);
  }

  get functionName(): string {
    return this.#init.fn.metadata.name;
  }

  get queueName(): string {
    return this.#init.queueName;
  }

  /** Whether this listener watches `queueName` in `account` (for waking it after an output binding wrote). */
  watches(account: StorageAccount, queueName: string): boolean {
    return this.#init.queueName === queueName && this.#init.account.queueService.url === account.queueService.url;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Polls now instead of at the end of the current back-off (SharedQueueWatcher.Notify). */
  notify(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /**
   * Stops polling, lets running functions finish for up to `graceMs`, then abandons the rest: their leases are
   * released so that the messages are visible again at once (nothing is lost; they are redelivered).
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopped = true;
    this.#signalStop();
    this.notify();
    await this.#loop;
    const running = [...this.#inFlight];
    if (running.length > 0) {
      const timer = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([Promise.all(running.map((r) => r.done)), timer]);
    }
    await Promise.all([...this.#inFlight].map((r) => this.#abandon(r)));
  }

  async #run(): Promise<void> {
    const { options, logger } = this.#init;
    let queueReady = false;
    let reason: PollReason = 'start';
    while (!this.#stopped) {
      // Fetch only when few enough messages are still running (QueueListener: newBatchThreshold).
      while (this.#inFlight.size > options.newBatchThreshold && !this.#stopped) {
        await Promise.race([this.#stopSignal, ...[...this.#inFlight].map((r) => r.done)]);
      }
      if (this.#stopped) break;

      let messages: DequeuedMessageItem[] = [];
      let failed = false;
      try {
        if (!queueReady) {
          await this.#client.createIfNotExists();
          queueReady = true;
        }
        const received = await this.#client.receiveMessages({
          numberOfMessages: options.batchSize,
          visibilityTimeout: this.#init.leaseSeconds,
        });
        messages = received.receivedMessageItems;
        this.#lastPollError = '';
      } catch (error) {
        failed = true;
        const text = (error as Error).message;
        // Storage being away is logged once per distinct error, not once per poll.
        if (text !== this.#lastPollError) {
          logger.warn(`Queue listener for '${this.#init.queueName}' (${this.functionName}) cannot poll: ${text}`);
          this.#lastPollError = text;
        }
      }
      if (this.#stopped) {
        // Received during shutdown: give them straight back.
        await Promise.all(messages.map((m) => this.#release(m.messageId, m.popReceipt)));
        break;
      }
      if (messages.length > 0 || reason === 'woken') {
        logger.debug(`Queue '${this.#init.queueName}' polled (${reason}): ${messages.length} message(s).`);
      }
      for (const message of messages) this.#process(message);
      reason = await this.#sleep(this.#backoff.next(messages.length > 0 && !failed));
    }
  }

  /** Waits `ms`, or less if notified; says which. */
  #sleep(ms: number): Promise<PollReason> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve('woken');
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve('scheduled');
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        this.#woken = false;
        resolve('woken');
      };
    });
  }

  #process(message: DequeuedMessageItem): void {
    const { leaseSeconds, logger } = this.#init;
    const lease = new MessageLease(this.#client, message.messageId, message.popReceipt, leaseSeconds, logger);
    const entry: InFlight = { message, lease, abandoned: false, done: Promise.resolve() };
    entry.done = this.#handle(entry)
      .then(() => undefined)
      .catch((error) => logger.error(`Queue message ${message.messageId}: ${errorMessage(error)}`))
      .finally(() => this.#inFlight.delete(entry));
    this.#inFlight.add(entry);
  }

  async #handle(entry: InFlight): Promise<Settled> {
    const { message, lease } = entry;
    const { options, logger, fn, queueName } = this.#init;

    if (message.dequeueCount > options.maxDequeueCount) {
      await lease.stop();
      await this.#moveToPoison(entry, `it has been dequeued ${message.dequeueCount} times`);
      return 'completed';
    }
    const decoded = decodeMessageBody(message.messageText, options.messageEncoding);
    if (!decoded.ok) {
      // An undecodable message can never succeed: straight to poison, no retries (azure-sdk-for-net#18326).
      await lease.stop();
      logger.error(`Message ${message.messageId} on '${queueName}' cannot be read: ${decoded.reason}.`);
      await this.#moveToPoison(entry, decoded.reason);
      return 'completed';
    }

    const text = decoded.bytes.toString('utf8');
    const input: RpcTypedData = this.#init.binary ? { bytes: decoded.bytes } : { string: text };
    let succeeded = false;
    let outcome: InvocationOutcome | undefined;
    try {
      outcome = await this.#init.invoke(fn, {
        reason: `New queue message detected on '${queueName}'.`,
        inputData: [{ name: this.#init.triggerBindingName, data: input }],
        triggerMetadata: this.#triggerMetadata(message, text),
      });
    } catch {
      // The invoker has logged the failure.
    }
    if (outcome !== undefined && !entry.abandoned) {
      try {
        await this.#init.completeOutputs(outcome);
        succeeded = true;
      } catch (error) {
        logger.error(`Output bindings of Functions.${fn.metadata.name} failed: ${errorMessage(error)}`);
      }
    }
    await lease.stop();
    if (entry.abandoned) return 'abandoned';

    if (succeeded) {
      await this.#delete(message.messageId, lease.popReceipt);
    } else if (message.dequeueCount >= options.maxDequeueCount) {
      await this.#moveToPoison(entry, `it has reached MaxDequeueCount of ${options.maxDequeueCount}`);
    } else {
      // visibilityTimeout is the retry delay (default 0: visible again at once).
      await this.#release(message.messageId, lease.popReceipt, Math.ceil(options.visibilityTimeoutMs / 1000));
    }
    return 'completed';
  }

  #triggerMetadata(message: DequeuedMessageItem, text: string): Record<string, RpcTypedData> {
    const json = (value: unknown): RpcTypedData => ({ json: JSON.stringify(value) });
    return {
      QueueTrigger: { string: text },
      DequeueCount: json(message.dequeueCount),
      Id: json(message.messageId),
      PopReceipt: json(message.popReceipt),
      InsertionTime: json(message.insertedOn.toISOString()),
      ExpirationTime: json(message.expiresOn.toISOString()),
      NextVisibleTime: json(message.nextVisibleOn.toISOString()),
      sys: json({ MethodName: this.functionName, UtcNow: new Date().toISOString(), RandGuid: randomUUID() }),
    };
  }

  async #moveToPoison(entry: InFlight, why: string): Promise<void> {
    const { message } = entry;
    const { logger, queueName, account } = this.#init;
    if (this.#poisonName === undefined) {
      // Without a poison queue the host leaves the message invisible (no release), avoiding a hot loop.
      logger.error(`Message ${message.messageId} on '${queueName}' failed (${why}); there is no poison queue.`);
      return;
    }
    logger.warn(
      `Message ${message.messageId} on '${queueName}': ${why}. Moving message to queue '${this.#poisonName}'.`,
    );
    const poison = account.queueService.getQueueClient(this.#poisonName);
    await poison.createIfNotExists();
    await poison.sendMessage(message.messageText); // the raw body, unchanged
    await this.#delete(message.messageId, entry.lease.popReceipt);
  }

  async #delete(messageId: string, popReceipt: string): Promise<void> {
    try {
      await this.#client.deleteMessage(messageId, popReceipt);
    } catch (error) {
      // Gone, or taken over by someone else after our lease expired: nothing to do (QueueProcessor ignores both).
      if (!isGoneOrMismatch(error)) throw error;
    }
  }

  async #release(messageId: string, popReceipt: string, visibilitySeconds = 0): Promise<void> {
    try {
      await this.#client.updateMessage(messageId, popReceipt, undefined, visibilitySeconds);
    } catch (error) {
      if (!isGoneOrMismatch(error)) {
        this.#init.logger.warn(`Could not release message ${messageId}: ${(error as Error).message}`);
      }
    }
  }

  async #abandon(entry: InFlight): Promise<void> {
    if (entry.abandoned) return;
    entry.abandoned = true;
    await entry.lease.stop();
    this.#init.logger.warn(
      `Abandoning message ${entry.message.messageId} of Functions.${this.functionName} (host stopping); it will be redelivered.`,
    );
    await this.#release(entry.message.messageId, entry.lease.popReceipt);
  }
}

function isGoneOrMismatch(error: unknown): boolean {
  const e = error as { statusCode?: number; code?: string };
  return e.statusCode === 404 || e.code === 'PopReceiptMismatch' || e.code === 'MessageNotFound';
}
