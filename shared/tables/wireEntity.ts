/**
 * The Azure Tables JSON wire form of an entity, as the HTTP entity endpoints take and return it and as the
 * service stores it (docs/TABLE-FORMAT.md "Wire form"):
 *
 *   {"PartitionKey":"p","RowKey":"r","Name":"text","Count":42,"Big@odata.type":"Edm.Int64","Big":"9007199254740993",
 *    "Photo@odata.type":"Edm.Binary","Photo":"AAEC"}
 *
 * A value without an annotation is a String (JSON string), Boolean (JSON true/false), Int32 (a JSON integer in
 * the 32-bit range) or Double (any other JSON number). Types JSON cannot carry are annotated with
 * `"<name>@odata.type"`: Edm.Int64 (decimal string), Edm.DateTime (ISO 8601 string), Edm.Guid, Edm.Binary (base64),
 * and Edm.Double for NaN/Infinity/-Infinity (strings) or to keep an integral Double a Double. Members named
 * `odata.*` (odata.etag, odata.metadata) are service metadata, not properties.
 *
 * Everything malformed is a CseError 'InvalidEntity' naming the member.
 */
import { CseError } from '../errors';
import { decodeBase64Strict } from '../crypto/strictBase64';
import {
  assertPropertyValue,
  isSystemPropertyName,
  properties,
  propertyEntries,
  type EdmType,
  type EntityRecord,
  type TableProperties,
  type TableValue,
} from './entityModel';

const ANNOTATION = '@odata.type';
const EDM_TYPES: readonly EdmType[] = ['String', 'Binary', 'Boolean', 'Int32', 'Int64', 'Double', 'DateTime', 'Guid'];

/** An entity read from the service, with what the service adds. */
export interface WireEntity extends EntityRecord {
  readonly etag?: string | undefined;
  readonly timestamp?: string | undefined;
}

/**
 * Reads the properties of a request body. PartitionKey / RowKey / Timestamp are refused (the keys come from the
 * URL; Timestamp belongs to the service), as are `odata.*` members other than odata.etag / odata.metadata.
 */
export function propertiesFromWire(json: unknown): TableProperties {
  const obj = requireObject(json);
  const { props, system } = splitMembers(obj);
  const found = Object.keys(system);
  if (found.length > 0) {
    throw new CseError('InvalidEntity', `the body must hold only the entity's properties, not ${found.join(', ')}`);
  }
  return props;
}

/** Reads a full entity in wire form (PartitionKey and RowKey required; odata.etag and Timestamp kept). */
export function entityFromWire(json: unknown): WireEntity {
  const obj = requireObject(json);
  const { props, system } = splitMembers(obj);
  const partitionKey = system['PartitionKey'];
  const rowKey = system['RowKey'];
  if (typeof partitionKey !== 'string' || typeof rowKey !== 'string') {
    throw new CseError('InvalidEntity', 'an entity needs string PartitionKey and RowKey members');
  }
  const etag = obj['odata.etag'];
  const timestamp = system['Timestamp'];
  return {
    partitionKey,
    rowKey,
    properties: props,
    etag: typeof etag === 'string' ? etag : undefined,
    timestamp: typeof timestamp === 'string' ? timestamp : undefined,
  };
}

/** Writes an entity in wire form: odata.etag, PartitionKey, RowKey, Timestamp, then the properties in order. */
export function entityToWire(entity: WireEntity): Record<string, unknown> {
  const out: [string, unknown][] = [];
  if (entity.etag !== undefined) out.push(['odata.etag', entity.etag]);
  out.push(['PartitionKey', entity.partitionKey], ['RowKey', entity.rowKey]);
  if (entity.timestamp !== undefined)
    out.push([`Timestamp${ANNOTATION}`, 'Edm.DateTime'], ['Timestamp', entity.timestamp]);
  out.push(...propertiesToWireEntries(entity.properties));
  return Object.fromEntries(out);
}

/** Just the properties in wire form (annotation first, then value, as the service writes them). */
export function propertiesToWire(props: TableProperties): Record<string, unknown> {
  return Object.fromEntries(propertiesToWireEntries(props));
}

function propertiesToWireEntries(props: TableProperties): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [name, v] of propertyEntries(props)) {
    const [value, annotate] = wireValue(v);
    if (annotate) out.push([`${name}${ANNOTATION}`, `Edm.${v.type}`]);
    out.push([name, value]);
  }
  return out;
}

function wireValue(v: TableValue): [unknown, boolean] {
  switch (v.type) {
    case 'String':
    case 'Boolean':
    case 'Int32':
      return [v.value, false];
    case 'Binary':
      return [v.value.toString('base64'), true];
    case 'Double':
      if (Number.isNaN(v.value)) return ['NaN', true];
      if (v.value === Infinity) return ['Infinity', true];
      if (v.value === -Infinity) return ['-Infinity', true];
      return [v.value, true];
    case 'Int64':
    case 'DateTime':
    case 'Guid':
      return [v.value, true];
  }
}

// ---------------------------------------------------------------------------------------------------------------

function requireObject(json: unknown): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CseError('InvalidEntity', 'an entity must be a JSON object');
  }
  return json as Record<string, unknown>;
}

function splitMembers(obj: Record<string, unknown>): { props: TableProperties; system: Record<string, unknown> } {
  const system: Record<string, unknown> = {};
  const out: [string, TableValue][] = [];
  for (const [key, raw] of Object.entries(obj)) {
    if (key.startsWith('odata.')) continue;
    const at = key.indexOf('@');
    if (at >= 0) {
      const name = key.slice(0, at);
      if (key.slice(at) !== ANNOTATION)
        throw new CseError('InvalidEntity', `unsupported annotation ${JSON.stringify(key)}`);
      if (!Object.prototype.hasOwnProperty.call(obj, name)) {
        throw new CseError(
          'InvalidEntity',
          `annotation ${JSON.stringify(key)} has no property ${JSON.stringify(name)}`,
        );
      }
      continue;
    }
    if (isSystemPropertyName(key)) {
      Object.defineProperty(system, key, { value: raw, enumerable: true });
      continue;
    }
    const annotation = obj[`${key}${ANNOTATION}`];
    out.push([key, valueFromWire(key, raw, annotation)]);
  }
  return { props: properties(out), system };
}

/** One property value from its JSON value and optional `@odata.type` annotation. */
export function valueFromWire(name: string, raw: unknown, annotation: unknown): TableValue {
  const bad = (why: string): never => {
    throw new CseError('InvalidEntity', `property ${name}: ${why}`);
  };
  if (raw === null || raw === undefined) bad('null values cannot be stored; leave the property out');
  let type: EdmType;
  if (annotation === undefined) {
    if (typeof raw === 'string') type = 'String';
    else if (typeof raw === 'boolean') type = 'Boolean';
    else if (typeof raw === 'number')
      type = Number.isInteger(raw) && raw >= -(2 ** 31) && raw < 2 ** 31 ? 'Int32' : 'Double';
    else return bad('the value must be a string, number or boolean');
  } else {
    if (typeof annotation !== 'string' || !annotation.startsWith('Edm.'))
      return bad('the @odata.type must be an Edm type');
    const t = annotation.slice(4) as EdmType;
    if (!EDM_TYPES.includes(t)) return bad(`unsupported type ${annotation}`);
    type = t;
  }
  let v: TableValue;
  switch (type) {
    case 'String':
    case 'DateTime':
    case 'Guid':
      if (typeof raw !== 'string') bad(`an Edm.${type} value must be a JSON string`);
      v = { type, value: raw as string };
      break;
    case 'Int64':
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) v = { type, value: String(raw) };
      else if (typeof raw === 'string') v = { type, value: raw };
      else return bad('an Edm.Int64 value must be a decimal string');
      break;
    case 'Binary': {
      const bytes = typeof raw === 'string' ? decodeBase64Strict(raw) : undefined;
      if (bytes === undefined) return bad('an Edm.Binary value must be base64 text');
      v = { type, value: bytes };
      break;
    }
    case 'Boolean':
      if (typeof raw !== 'boolean') bad('an Edm.Boolean value must be true or false');
      v = { type, value: raw as boolean };
      break;
    case 'Int32':
      if (typeof raw !== 'number') bad('an Edm.Int32 value must be a JSON number');
      v = { type, value: raw as number };
      break;
    case 'Double':
      v = { type, value: doubleFromWire(raw, bad) };
      break;
  }
  assertPropertyValue(name, v);
  return v;
}

function doubleFromWire(raw: unknown, bad: (why: string) => never): number {
  if (typeof raw === 'number') return raw;
  switch (raw) {
    case 'NaN':
      return NaN;
    case 'Infinity':
    case 'INF':
      return Infinity;
    case '-Infinity':
    case '-INF':
      return -Infinity;
  }
  if (typeof raw === 'string' && /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(raw)) return Number(raw);
  return bad('an Edm.Double value must be a number, "NaN", "Infinity" or "-Infinity"');
}
