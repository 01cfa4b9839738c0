/**
 * The entity model shared by the table modules: an entity is its two keys plus an ordered map of typed
 * properties. Every property carries its Entity Data Model type, so an Int64, a Guid or a DateTime survives a
 * round trip exactly (the HTTP wire form, docs/TABLE-FORMAT.md, and the @azure/data-tables form are both
 * converted to and from this one model).
 *
 * Property order is the caller's insertion order. It matters: the legacy 1.0 format lists the encrypted names in
 * entity order, and the bit-exact vectors depend on it.
 */
import { CseError } from '../errors';

export type EdmType = 'String' | 'Binary' | 'Boolean' | 'Int32' | 'Int64' | 'Double' | 'DateTime' | 'Guid';

/** One property value, discriminated on its EDM type. */
export type TableValue =
  | { readonly type: 'String'; readonly value: string }
  | { readonly type: 'Binary'; readonly value: Buffer }
  | { readonly type: 'Boolean'; readonly value: boolean }
  | { readonly type: 'Int32'; readonly value: number }
  /** Decimal digits with an optional leading '-': an Int64 does not fit a JS number exactly. */
  | { readonly type: 'Int64'; readonly value: string }
  /** NaN and ±Infinity are allowed (the service stores them). */
  | { readonly type: 'Double'; readonly value: number }
  /** ISO 8601 UTC text as on the wire, e.g. 2024-05-01T12:00:00.1234567Z (sub-millisecond digits kept). */
  | { readonly type: 'DateTime'; readonly value: string }
  | { readonly type: 'Guid'; readonly value: string };

/** Properties by name, in entity order. Build with `properties()` so that no name can touch the prototype. */
export type TableProperties = Readonly<Record<string, TableValue>>;

/** An entity as the caller sees it (plaintext) or as it is stored (ciphertext plus the two metadata properties). */
export interface EntityRecord {
  readonly partitionKey: string;
  readonly rowKey: string;
  readonly properties: TableProperties;
}

/** Names the service owns; they are never user properties. */
export const SYSTEM_PROPERTY_NAMES = ['PartitionKey', 'RowKey', 'Timestamp'] as const;

/** The two properties every encrypted entity carries (FORMAT.md §6.4; the same names in protocol 2.0). */
export const KEY_METADATA_PROPERTY = '_ClientEncryptionMetadata1';
export const NAME_LIST_PROPERTY = '_ClientEncryptionMetadata2';
export const RESERVED_PROPERTY_NAMES = [KEY_METADATA_PROPERTY, NAME_LIST_PROPERTY] as const;

/** The longest property name the service accepts (characters). */
export const MAX_PROPERTY_NAME_LENGTH = 255;

/**
 * Property names follow the C# identifier rules the service documents: a letter or underscore, then letters,
 * digits, underscores, combining marks and formatting characters; at most 255 characters.
 */
const PROPERTY_NAME = /^[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}\p{Cf}]*$/u;

/** Builds a property map from entries (own data properties only, so `__proto__` is just a name). */
export function properties(entries: Iterable<readonly [string, TableValue]>): TableProperties {
  return Object.fromEntries(entries) as TableProperties;
}

export function propertyEntries(props: TableProperties): [string, TableValue][] {
  return Object.entries(props);
}

export function getProperty(props: TableProperties, name: string): TableValue | undefined {
  return Object.prototype.hasOwnProperty.call(props, name) ? props[name] : undefined;
}

export function isReservedPropertyName(name: string): boolean {
  return (RESERVED_PROPERTY_NAMES as readonly string[]).includes(name);
}

export function isSystemPropertyName(name: string): boolean {
  return (SYSTEM_PROPERTY_NAMES as readonly string[]).includes(name);
}

/**
 * Checks a name a caller wants to write. System names and malformed names: CseError 'InvalidName'; the two
 * encryption metadata names: CseError 'ReservedMetadata'.
 */
export function assertUserPropertyName(name: string): void {
  if (isReservedPropertyName(name)) {
    throw new CseError(
      'ReservedMetadata',
      `property name ${name} is reserved for the encryption metadata of the entity and cannot be written by a caller`,
    );
  }
  if (isSystemPropertyName(name)) {
    throw new CseError(
      'InvalidName',
      `${name} is a system property: it is set by the service (Timestamp) or taken from the entity's keys`,
    );
  }
  if (name.length === 0 || name.length > MAX_PROPERTY_NAME_LENGTH || !PROPERTY_NAME.test(name)) {
    throw new CseError(
      'InvalidName',
      `property name ${JSON.stringify(name)} is not valid: names are 1-${MAX_PROPERTY_NAME_LENGTH} characters, ` +
        'start with a letter or underscore and contain only letters, digits and underscores',
    );
  }
}

/**
 * Keys must be well-formed Unicode (a lone surrogate has no UTF-8 form, so it could not be bound into the 2.0
 * associated data unambiguously) and free of the characters the service forbids in keys.
 */
export function assertEntityKeys(partitionKey: string, rowKey: string): void {
  for (const [what, key] of [
    ['PartitionKey', partitionKey],
    ['RowKey', rowKey],
  ] as const) {
    if (typeof key !== 'string') throw new CseError('InvalidName', `${what} must be a string`);
    if (!isWellFormedUnicode(key)) throw new CseError('InvalidName', `${what} is not well-formed Unicode text`);
    // Forbidden by the Table service: '/', '\', '#', '?' and control characters U+0000-U+001F, U+007F-U+009F.
    // eslint-disable-next-line no-control-regex
    if (/[/\\#?\u0000-\u001f\u007f-\u009f]/.test(key)) {
      throw new CseError(
        'InvalidName',
        `${what} ${JSON.stringify(key)} contains a character the Table service forbids in keys (/ \\ # ? or a control character)`,
      );
    }
  }
}

function isWellFormedUnicode(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

/** Value constructors (readable call sites in callers and tests). */
export const tv = {
  string: (value: string): TableValue => ({ type: 'String', value }),
  binary: (value: Uint8Array): TableValue => ({ type: 'Binary', value: Buffer.from(value) }),
  boolean: (value: boolean): TableValue => ({ type: 'Boolean', value }),
  int32: (value: number): TableValue => ({ type: 'Int32', value }),
  int64: (value: bigint | string): TableValue => ({ type: 'Int64', value: String(value) }),
  double: (value: number): TableValue => ({ type: 'Double', value }),
  dateTime: (value: string | Date): TableValue => ({
    type: 'DateTime',
    value: value instanceof Date ? value.toISOString() : value,
  }),
  guid: (value: string): TableValue => ({ type: 'Guid', value }),
} as const;

/** Compares two values by type and content (Binary by bytes; NaN equals NaN). */
export function sameValue(a: TableValue, b: TableValue): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'Binary') return a.value.equals((b as typeof a).value);
  if (a.type === 'Double') return Object.is(a.value, (b as typeof a).value) || a.value === (b as typeof a).value;
  return a.value === b.value;
}

const INT64 = /^-?(?:0|[1-9][0-9]{0,18})$/;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Checks that a value is representable in its EDM type (CseError 'InvalidEntity' naming the property). */
export function assertPropertyValue(name: string, v: TableValue): void {
  const bad = (why: string): never => {
    throw new CseError('InvalidEntity', `property ${name} (Edm.${v.type}): ${why}`);
  };
  switch (v.type) {
    case 'String':
      if (typeof v.value !== 'string') bad('the value must be a string');
      return;
    case 'Binary':
      if (!Buffer.isBuffer(v.value)) bad('the value must be bytes');
      return;
    case 'Boolean':
      if (typeof v.value !== 'boolean') bad('the value must be true or false');
      return;
    case 'Int32':
      if (!Number.isInteger(v.value) || v.value < -(2 ** 31) || v.value > 2 ** 31 - 1) {
        bad('the value must be an integer from -2147483648 to 2147483647');
      }
      return;
    case 'Int64': {
      if (typeof v.value !== 'string' || !INT64.test(v.value)) bad('the value must be a decimal integer');
      const n = BigInt(v.value);
      if (n < INT64_MIN || n > INT64_MAX) bad('the value is outside the 64-bit signed range');
      return;
    }
    case 'Double':
      if (typeof v.value !== 'number') bad('the value must be a number');
      return;
    case 'DateTime':
      if (typeof v.value !== 'string' || !DATE_TIME.test(v.value) || Number.isNaN(Date.parse(v.value))) {
        bad('the value must be an ISO 8601 date and time with a time zone, e.g. 2024-05-01T12:00:00Z');
      }
      return;
    case 'Guid':
      if (typeof v.value !== 'string' || !GUID.test(v.value)) bad('the value must be a GUID');
      return;
    default:
      throw new CseError(
        'InvalidEntity',
        `property ${name}: unknown EDM type ${JSON.stringify((v as { type: unknown }).type)}`,
      );
  }
}
