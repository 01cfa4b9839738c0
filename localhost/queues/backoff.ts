/**
 * The queue listener's polling delay: randomized exponential back-off from 100 ms up to maxPollingInterval,
 * reset to the minimum whenever a poll finds messages (WebJobs RandomizedExponentialBackoffStrategy).
 */
export const MINIMUM_POLLING_INTERVAL_MS = 100;
const RANDOMIZATION = 0.2;

export class RandomizedBackoff {
  readonly #min: number;
  readonly #max: number;
  readonly #random: () => number;
  #current: number;
  #exponent = 1;

  constructor(maxMs: number, minMs = MINIMUM_POLLING_INTERVAL_MS, random: () => number = Math.random) {
    this.#min = minMs;
    this.#max = Math.max(maxMs, minMs);
    this.#random = random;
    this.#current = minMs;
  }

  /** The delay before the next poll, given whether the last one found work. */
  next(foundWork: boolean): number {
    if (foundWork) {
      this.#current = this.#min;
      this.#exponent = 1;
    } else if (this.#current !== this.#max) {
      const factor = 1 - RANDOMIZATION + this.#random() * 2 * RANDOMIZATION;
      const candidate = this.#min + factor * 2 ** (this.#exponent - 1) * this.#min;
      if (candidate < this.#max) {
        this.#current = candidate;
        this.#exponent++;
      } else {
        this.#current = this.#max;
      }
    }
    return Math.round(this.#current);
  }
}
