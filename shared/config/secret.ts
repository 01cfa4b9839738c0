import { inspect } from 'node:util';

/**
 * A secret setting value (a storage account key, a SAS, a client secret). Logging, JSON-serialising or
 * inspecting the configuration shows `[redacted]`; only `reveal()` gives the value, at the point of use.
 */
export class SecretString {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}
