/**
 * Conversion between the entity model (entityModel.ts) and what @azure/data-tables 13.x sends and returns.
 *
 * Sending: every non-String value goes as the SDK's `{type, value}` form with the value in its JSON wire form,
 * so the SDK writes it with an explicit `@odata.type` (an Int64 stays an Int64, a Double stays a Double).
 * Binary goes as a Buffer (the SDK base64-encodes it).
 * Receiving: entities are read with `disableTypeConversion: true`, so the SDK hands back `{type, value}` for
 * everything; unannotated numbers and booleans arrive as strings ("42", "true") and are turned back here.
 */
import type { TableEntity } from '@azure/data-tables';
import { CseError } from '../errors';
import { properties, propertyEntries, type EdmType, type EntityRecord, type TableValue } from './entityModel';
import { valueFromWire } from './wireEntity';

/** The SDK's entity with the model's values. */
export function toSdkEntity(entity: EntityRecord): TableEntity<Record<string, unknown>> {
  const out: [string, unknown][] = [
    ['partitionKey', entity.partitionKey],
    ['rowKey', entity.rowKey],
  ];
  for (const [name, v] of propertyEntries(entity.properties)) out.push([name, toSdkValue(v)]);
  return Object.fromEntries(out) as TableEntity<Record<string, unknown>>;
}

function toSdkValue(v: TableValue): unknown {
  switch (v.type) {
    case 'String':
    case 'Boolean':
      return v.value;
    case 'Binary':
      return Buffer.from(v.value); // a Buffer of its own (the SDK mis-encodes Uint8Array views)
    case 'Double':
      if (Number.isNaN(v.value)) return { type: 'Double', value: 'NaN' };
      if (v.value === Infinity) return { type: 'Double', value: 'Infinity' };
      if (v.value === -Infinity) return { type: 'Double', value: '-Infinity' };
      return { type: 'Double', value: v.value };
    case 'Int32':
    case 'Int64':
    case 'DateTime':
    case 'Guid':
      return { type: v.type, value: v.value };
  }
}

/** An entity as returned by the SDK with disableTypeConversion, plus its etag and Timestamp. */
export interface SdkReadEntity extends EntityRecord {
  readonly etag: string;
  readonly timestamp: string | undefined;
}

const SDK_SYSTEM_MEMBERS = new Set(['partitionKey', 'rowKey', 'etag', 'timestamp', 'odata.metadata']);

/**
 * `doubleMembers`: names of members the service wrote as numbers with a fraction or exponent (see
 * jsonDoubleMembers.ts); the SDK labels them Int32 when integral, they are Doubles.
 */
export function fromSdkEntity(
  raw: Record<string, unknown>,
  doubleMembers: ReadonlySet<string> = new Set(),
): SdkReadEntity {
  const { partitionKey, rowKey, etag } = raw;
  if (typeof partitionKey !== 'string' || typeof rowKey !== 'string' || typeof etag !== 'string') {
    throw new CseError('InvalidEntity', 'the service returned an entity without PartitionKey, RowKey or ETag');
  }
  const out: [string, TableValue][] = [];
  for (const [name, member] of Object.entries(raw)) {
    if (SDK_SYSTEM_MEMBERS.has(name) || name.startsWith('odata.')) continue;
    out.push([name, fromSdkValue(name, member, doubleMembers.has(name))]);
  }
  return { partitionKey, rowKey, etag, timestamp: timestampOf(raw['timestamp']), properties: properties(out) };
}

function timestampOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { value?: unknown }).value === 'string') {
    return (value as { value: string }).value;
  }
  return undefined;
}

function fromSdkValue(name: string, member: unknown, writtenAsDouble: boolean): TableValue {
  if (typeof member !== 'object' || member === null || !('type' in member) || !('value' in member)) {
    // Only PartitionKey/RowKey come back bare with disableTypeConversion; anything else is unexpected.
    return valueFromWire(name, member, undefined);
  }
  const { type, value } = member as { type: EdmType; value: unknown };
  switch (type) {
    case 'Boolean':
      return valueFromWire(name, value === 'true' ? true : value === 'false' ? false : value, 'Edm.Boolean');
    case 'Int32': {
      // The SDK labels every unannotated integral JSON number Int32; one outside the Int32 range is a Double.
      const n = typeof value === 'string' ? Number(value) : value;
      const int32 = !writtenAsDouble && typeof n === 'number' && Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31;
      return valueFromWire(name, n, int32 ? 'Edm.Int32' : 'Edm.Double');
    }
    case 'Double':
      return valueFromWire(name, value, 'Edm.Double');
    default:
      return valueFromWire(name, value, `Edm.${type}`);
  }
}
