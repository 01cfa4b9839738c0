/**
 * Table service limits, checked on the entity exactly as it will be stored (after encryption, with the two
 * metadata properties) so that an oversized entity fails here with a clear CseError 'EntityTooLarge' instead
 * of a service 400 after key work.
 *
 * Size is estimated the way the service documents its accounting ("Understanding the Table service data model",
 * entity size): 4 bytes + 2 × (characters of PartitionKey + RowKey) + for each property: 8 bytes + 2 × characters
 * of its name + the size of its value, where a String is 2 bytes per UTF-16 character + 4, a Binary its byte
 * count + 4, a Guid 16, an Int64, Double or DateTime 8, an Int32 4 and a Boolean 1. The limit is 1 MiB.
 */
import { CseError } from '../errors';
import { isReservedPropertyName, propertyEntries, type EntityRecord, type TableValue } from './entityModel';

export const MAX_ENTITY_BYTES = 1024 * 1024;
/** Includes the three system properties (PartitionKey, RowKey, Timestamp) and the two metadata properties. */
export const MAX_PROPERTIES = 255;
export const SYSTEM_PROPERTY_COUNT = 3;
export const MAX_BINARY_BYTES = 64 * 1024;
/** A String is at most 64 KiB of UTF-16: 32 768 characters (code units). */
export const MAX_STRING_CHARS = 32 * 1024;

export function valueSize(v: TableValue): number {
  switch (v.type) {
    case 'String':
      return 4 + 2 * v.value.length;
    case 'Binary':
      return 4 + v.value.length;
    case 'Guid':
      return 16;
    case 'Int64':
    case 'Double':
    case 'DateTime':
      return 8;
    case 'Int32':
      return 4;
    case 'Boolean':
      return 1;
  }
}

/** The service's size estimate for an entity (see the module comment). */
export function estimateEntitySize(entity: EntityRecord): number {
  let size = 4 + 2 * (entity.partitionKey.length + entity.rowKey.length);
  for (const [name, v] of propertyEntries(entity.properties)) size += 8 + 2 * name.length + valueSize(v);
  return size;
}

/**
 * Throws CseError 'EntityTooLarge' when the stored form of an entity breaks a limit. `encrypted` names the
 * properties that were encrypted (their message explains the ciphertext overhead).
 */
export function assertEntityWithinLimits(stored: EntityRecord, encrypted: ReadonlySet<string> = new Set()): void {
  const where = `entity (PartitionKey ${JSON.stringify(stored.partitionKey)}, RowKey ${JSON.stringify(stored.rowKey)})`;
  const entries = propertyEntries(stored.properties);
  const count = entries.length + SYSTEM_PROPERTY_COUNT;
  if (count > MAX_PROPERTIES) {
    const metadata = entries.filter(([n]) => isReservedPropertyName(n)).length;
    throw new CseError(
      'EntityTooLarge',
      `${where} has ${count} properties including PartitionKey, RowKey, Timestamp` +
        (metadata > 0 ? ` and the ${metadata} encryption metadata properties` : '') +
        `; the Table service allows ${MAX_PROPERTIES}` +
        (metadata > 0
          ? `, so an encrypted entity has room for ${MAX_PROPERTIES - SYSTEM_PROPERTY_COUNT - metadata} properties`
          : ''),
    );
  }
  for (const [name, v] of entries) {
    if (v.type === 'Binary' && v.value.length > MAX_BINARY_BYTES) {
      throw new CseError(
        'EntityTooLarge',
        encrypted.has(name)
          ? `property ${name} encrypts to ${v.value.length} bytes, stored as Edm.Binary, which the Table service limits ` +
              `to ${MAX_BINARY_BYTES} bytes (64 KiB); encryption stores the UTF-8 form of the text plus its overhead, ` +
              'so shorten the value or leave it unencrypted'
          : `property ${name} is ${v.value.length} bytes of Edm.Binary; the Table service limit is ${MAX_BINARY_BYTES} bytes (64 KiB)`,
      );
    }
    if (v.type === 'String' && v.value.length > MAX_STRING_CHARS) {
      throw new CseError(
        'EntityTooLarge',
        `property ${name} is ${v.value.length} characters; the Table service limits a string to ${MAX_STRING_CHARS} ` +
          'UTF-16 characters (64 KiB)',
      );
    }
  }
  const size = estimateEntitySize(stored);
  if (size > MAX_ENTITY_BYTES) {
    throw new CseError(
      'EntityTooLarge',
      `${where} is ${size} bytes as the Table service counts entity size` +
        (encrypted.size > 0 ? ' (after encryption, with its metadata)' : '') +
        `; the limit is ${MAX_ENTITY_BYTES} bytes (1 MiB)`,
    );
  }
}
