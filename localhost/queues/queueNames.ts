import { HostStartError } from '../errors';

/**
 * Queue names as the Functions host takes them: lower-cased, then checked against Azure's rules (3-63 characters,
 * lower-case letters, digits and single hyphens, starting and ending with a letter or digit).
 */
export function normalizeQueueName(name: string, where: string): string {
  const lower = name.toLowerCase();
  if (!isValidQueueName(lower)) {
    throw new HostStartError(
      `${where}: "${name}" is not a valid queue name (3-63 characters: lower-case letters, digits, single hyphens).`,
    );
  }
  return lower;
}

export function isValidQueueName(name: string): boolean {
  return name.length >= 3 && name.length <= 63 && /^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/.test(name);
}

/** `<queue>-poison`, or undefined when the host would have no poison queue (too long, or already poison). */
export function poisonQueueName(queueName: string): string | undefined {
  if (queueName.endsWith('-poison')) return undefined;
  const poison = `${queueName}-poison`;
  return isValidQueueName(poison) ? poison : undefined;
}
