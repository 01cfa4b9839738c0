/**
 * Which containers the app may touch: those allowed by `CSE_CONTAINERS` (`*` or a comma-separated list), never
 * the Functions host's own containers (`azure-webjobs-hosts`, `azure-webjobs-secrets`, the deployment package
 * container `azure-webjobs-app-package`: any `azure-webjobs-*`), not even when a list names one: they hold host
 * locks, timer state, function keys and the app's code, which an HTTP caller must not read or overwrite.
 */
import { CseError } from '../errors';
import { validateContainerName } from './names';
import type { NameAllowList } from '../config/azureNames';

/** `'*'` = every container except the host's; otherwise the exact container names allowed. */
export type ContainerAllowList = '*' | readonly string[];

const HOST_CONTAINER_PREFIX = 'azure-webjobs-';

export class ContainerPolicy {
  readonly #allowed: '*' | ReadonlySet<string>;
  readonly #reserved: ReadonlySet<string>;

  /** `reserved`: further containers that are never served (e.g. a deployment package container). */
  constructor(allowList: ContainerAllowList, reserved: readonly string[] = []) {
    this.#allowed = allowList === '*' ? '*' : new Set(allowList);
    this.#reserved = new Set(reserved);
  }

  /** From the parsed `CSE_CONTAINERS` of shared/config (`{kind:'all'}` or `{kind:'only', names}`). */
  static fromAllowList(list: NameAllowList, reserved: readonly string[] = []): ContainerPolicy {
    return new ContainerPolicy(list.kind === 'all' ? '*' : list.names, reserved);
  }

  /** Parses the `CSE_CONTAINERS` setting: `*` (or empty) for all, else a comma-separated list. */
  static fromSetting(value: string | undefined, reserved: readonly string[] = []): ContainerPolicy {
    const trimmed = (value ?? '').trim();
    if (trimmed === '' || trimmed === '*') return new ContainerPolicy('*', reserved);
    const names = trimmed
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    for (const name of names) validateContainerName(name);
    return new ContainerPolicy(names, reserved);
  }

  isAllowed(container: string): boolean {
    if (container.startsWith(HOST_CONTAINER_PREFIX) || this.#reserved.has(container)) return false;
    return this.#allowed === '*' || this.#allowed.has(container);
  }

  /** Validates the name (InvalidName) and then the policy (ContainerNotAllowed). */
  assertAllowed(container: string): void {
    validateContainerName(container);
    if (!this.isAllowed(container)) {
      throw new CseError('ContainerNotAllowed', `Container "${container}" is not served by this app (CSE_CONTAINERS).`);
    }
  }
}
