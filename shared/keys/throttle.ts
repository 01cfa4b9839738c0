/**
 * Key Vault throttling (HTTP 429 with `Retry-After`), handled once per vault.
 *
 * Key Vault limits operations per vault (for example 500 per 10 s for RSA 3072 HSM keys, 4,000 for software RSA
 * 2048), so when one call is throttled every call to that vault should wait, not just the one that saw the 429.
 * The Azure SDK's own retry policy does honour `Retry-After`, but without any cap (a `Retry-After: 3600` would
 * hold a request for an hour) and per request. So:
 *
 *  - `throttleDetectionPolicy` runs inside the SDK's retry loop ("perRetry") and turns a 429 (or a 503 with
 *    `Retry-After`) into a `KeyVaultThrottledError`, which the SDK's retry policy does not retry (it only
 *    retries RestErrors); other transient failures keep the SDK's exponential retries;
 *  - `ThrottleGate` (one per vault) remembers until when the vault asked us to wait and makes every call wait
 *    that long first, within a bounded budget; past the budget (or after `maxRetries` throttled attempts) the call
 *    fails with CseError 'KeyUnavailable' carrying `retryAfterSeconds`, which HTTP functions turn into 503 +
 *    Retry-After and the rotation worker into a pause.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CseError } from '../errors';

/** Thrown by the detection policy for a throttled response. Not a RestError on purpose (see above). */
export class KeyVaultThrottledError extends Error {
  override readonly name = 'KeyVaultThrottledError';
  constructor(
    /** From Retry-After / retry-after-ms / x-ms-retry-after-ms; undefined when the response had none. */
    readonly retryAfterMs: number | undefined,
    readonly status: number,
  ) {
    super(`Key Vault answered ${status}${retryAfterMs === undefined ? '' : `, retry after ${retryAfterMs} ms`}`);
  }
}

/** The structural shape of a core-rest-pipeline policy (kept structural: the package is a transitive dependency). */
export interface PipelinePolicyLike {
  name: string;
  sendRequest(
    request: unknown,
    next: (request: unknown) => Promise<{ status: number; headers: { get(name: string): string | undefined } }>,
  ): Promise<unknown>;
}

export const THROTTLE_DETECTION_POLICY_NAME = 'cseKeyVaultThrottleDetection';

export const throttleDetectionPolicy: PipelinePolicyLike = {
  name: THROTTLE_DETECTION_POLICY_NAME,
  async sendRequest(request, next) {
    const response = await next(request);
    const retryAfterMs = parseRetryAfter(response.headers);
    if (response.status === 429 || (response.status === 503 && retryAfterMs !== undefined)) {
      throw new KeyVaultThrottledError(retryAfterMs, response.status);
    }
    return response;
  },
};

/** Parses `retry-after-ms`, `x-ms-retry-after-ms` (milliseconds) or `Retry-After` (seconds or an HTTP date). */
export function parseRetryAfter(headers: { get(name: string): string | undefined }): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = headers.get(name);
    if (value !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(value)) return Math.ceil(Number(value));
  }
  const value = headers.get('retry-after');
  if (value === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

export interface ThrottleOptions {
  /** Throttled attempts one call makes before giving up (default 3). */
  readonly maxRetries?: number;
  /** Total time one call may spend waiting for the vault (default 30 s). A longer Retry-After fails at once. */
  readonly maxWaitMs?: number;
  /** Wait used when a 429 carries no Retry-After (default 1 s, doubled per attempt). */
  readonly defaultRetryAfterMs?: number;
  /** Clock and timer, for tests. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_THROTTLE_MAX_RETRIES = 3;
export const DEFAULT_THROTTLE_MAX_WAIT_MS = 30_000;

export class ThrottleGate {
  readonly #maxRetries: number;
  readonly #maxWaitMs: number;
  readonly #defaultRetryAfterMs: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #closedUntil = 0;

  constructor(
    /** Names the vault in error messages. */
    readonly vault: string,
    options: ThrottleOptions = {},
  ) {
    this.#maxRetries = options.maxRetries ?? DEFAULT_THROTTLE_MAX_RETRIES;
    this.#maxWaitMs = options.maxWaitMs ?? DEFAULT_THROTTLE_MAX_WAIT_MS;
    this.#defaultRetryAfterMs = options.defaultRetryAfterMs ?? 1000;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => sleep(ms));
  }

  /** Milliseconds until the vault accepts calls again (0 when open). */
  get waitMs(): number {
    return Math.max(0, this.#closedUntil - this.#now());
  }

  /**
   * Runs `call`, waiting first while the vault is throttled and retrying throttled attempts within the budget.
   * Non-throttling errors pass through unchanged.
   */
  async run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    let throttled = 0;
    let waited = 0;
    for (;;) {
      const wait = this.waitMs;
      if (wait > 0) {
        if (waited + wait > this.#maxWaitMs) throw this.#unavailable(operation, wait);
        await this.#sleep(wait);
        waited += wait;
      }
      try {
        return await call();
      } catch (error) {
        const signal = findThrottled(error);
        if (signal === undefined) throw error;
        const retryAfterMs = signal.retryAfterMs ?? this.#defaultRetryAfterMs * 2 ** throttled;
        this.#closedUntil = Math.max(this.#closedUntil, this.#now() + retryAfterMs);
        throttled += 1;
        if (throttled > this.#maxRetries) throw this.#unavailable(operation, retryAfterMs);
      }
    }
  }

  #unavailable(operation: string, retryAfterMs: number): CseError {
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    return new CseError(
      'KeyUnavailable',
      `Key Vault ${this.vault} is throttling requests (${operation}); retry after ${seconds} s`,
      { retryAfterSeconds: seconds },
    );
  }
}

/** The throttling signal in an error or its cause chain (SDK layers may wrap it). */
function findThrottled(error: unknown): KeyVaultThrottledError | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof KeyVaultThrottledError) return e;
  }
  return undefined;
}
