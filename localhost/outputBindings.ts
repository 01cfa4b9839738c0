/**
 * Output bindings other than HTTP, written by the host after a function succeeds, as the Functions host does:
 * `output.storageQueue` (an object is sent as JSON, an array as one message per element, each encoded per
 * host.json messageEncoding; the queue is created if missing; listeners of that queue in this host wake at once).
 */
import type { RegisteredFunction, RpcInvocationResponse, RpcTypedData } from './coreApi';
import { HostStartError } from './errors';
import type { MessageEncoding } from './hostJson';
import { encodeMessageBody } from './queues/messageEncoding';
import { normalizeQueueName } from './queues/queueNames';
import { resolveBindingExpression, type Settings } from './settings';
import { openStorageAccount, resolveConnectionSettingName, type StorageAccount } from './storage';

/** Storage accounts by connection setting, opened once. */
export class StorageAccounts {
  readonly #settings: Settings;
  readonly #accounts = new Map<string, StorageAccount>();
  constructor(settings: Settings) {
    this.#settings = settings;
  }
  get(connection: string | undefined): StorageAccount {
    const name = resolveConnectionSettingName(this.#settings, connection);
    let account = this.#accounts.get(name);
    if (!account) {
      account = openStorageAccount(this.#settings, name);
      this.#accounts.set(name, account);
    }
    return account;
  }
  all(): StorageAccount[] {
    return [...this.#accounts.values()];
  }
}

interface QueueOutput {
  readonly bindingName: string;
  readonly queueName: string;
  readonly account: StorageAccount;
}

export interface FunctionOutputs {
  readonly queues: readonly QueueOutput[];
}

/** Called after a message is written to a queue, so that a listener of that queue polls now. */
export type QueueWriteListener = (account: StorageAccount, queueName: string) => void;

export class OutputBindings {
  readonly #settings: Settings;
  readonly #accounts: StorageAccounts;
  readonly #encoding: MessageEncoding;
  readonly #onWrite: QueueWriteListener;
  readonly #created = new Set<string>();

  constructor(settings: Settings, accounts: StorageAccounts, encoding: MessageEncoding, onWrite: QueueWriteListener) {
    this.#settings = settings;
    this.#accounts = accounts;
    this.#encoding = encoding;
    this.#onWrite = onWrite;
  }

  /**
   * Works out, at start-up, where a function's outputs go; a binding the local host cannot serve, or an
   * unresolvable `%Setting%`, is a start-up error rather than a surprise at the first invocation.
   */
  plan(fn: RegisteredFunction): FunctionOutputs {
    const queues: QueueOutput[] = [];
    for (const [bindingName, binding] of Object.entries(fn.metadata.bindings)) {
      const type = (binding.type ?? '').toLowerCase();
      const where = `Function '${fn.metadata.name}', binding '${bindingName}'`;
      if (binding.direction === 'out') {
        if (type === 'http') continue;
        if (type === 'queue') {
          const resolved = resolveBindingExpression(
            String(binding.queueName ?? ''),
            this.#settings,
            `${where} (queueName)`,
          );
          const queueName = normalizeQueueName(resolved, where);
          queues.push({ bindingName, queueName, account: this.#accounts.get(asString(binding.connection)) });
          continue;
        }
        throw new HostStartError(`${where}: the local host does not support '${binding.type}' output bindings.`);
      } else if (!/trigger$/i.test(type)) {
        throw new HostStartError(`${where}: the local host does not support '${binding.type}' input bindings.`);
      }
    }
    return { queues };
  }

  /** Writes the outputs of a successful invocation. Rejects if any write fails (the invocation then fails). */
  async flush(outputs: FunctionOutputs, response: RpcInvocationResponse): Promise<void> {
    for (const queue of outputs.queues) {
      const data =
        queue.bindingName === '$return'
          ? response.returnValue
          : response.outputData?.find((o) => o.name === queue.bindingName)?.data;
      const bodies = toQueueMessages(data);
      if (bodies.length === 0) continue;
      const client = queue.account.queueService.getQueueClient(queue.queueName);
      const key = `${client.url}`;
      if (!this.#created.has(key)) {
        await client.createIfNotExists();
        this.#created.add(key);
      }
      for (const body of bodies) await client.sendMessage(encodeMessageBody(body, this.#encoding));
      this.#onWrite(queue.account, queue.queueName);
    }
  }
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The messages an output value stands for: arrays are one message per element. */
export function toQueueMessages(data: RpcTypedData | null | undefined): (string | Uint8Array)[] {
  if (data === null || data === undefined) return [];
  if (typeof data.string === 'string') return [data.string];
  if (data.bytes) return [data.bytes];
  if (typeof data.int === 'number') return [String(data.int)];
  if (typeof data.double === 'number') return [String(data.double)];
  if (data.collectionString?.string) return data.collectionString.string;
  if (data.collectionBytes?.bytes) return data.collectionBytes.bytes;
  if (typeof data.json === 'string') {
    const value: unknown = JSON.parse(data.json);
    if (Array.isArray(value)) {
      return value
        .filter((v) => v !== null && v !== undefined)
        .map((v) => (typeof v === 'string' ? v : isSerializedBuffer(v) ? Buffer.from(v.data) : JSON.stringify(v)));
    }
    return [data.json];
  }
  return [];
}

/** A Buffer inside an array reaches the host as JSON `{type:'Buffer', data:[...]}`. */
function isSerializedBuffer(v: unknown): v is { type: 'Buffer'; data: number[] } {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((v as { data?: unknown }).data)
  );
}
