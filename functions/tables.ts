/**
 * The table entity HTTP API: encrypt on PUT, decrypt on GET (one entity, or one page of a partition), DELETE.
 * Thin wiring over shared/tables/EncryptedTableClient: this file owns the HTTP semantics (routes, statuses,
 * conditional headers, the request checks made before any call), the library owns the format.
 *
 * Routes (all under /api, function keys required in Azure):
 *   PUT|GET|DELETE  tables/{table}/entities/{partitionKey}/{rowKey}
 *   GET             tables/{table}/entities/{partitionKey}?continuationToken=&maxResults=&filter=
 *
 * Entities travel in the Azure Tables JSON wire form (shared/tables/wireEntity.ts, docs/TABLE-FORMAT.md).
 * Everything that can be checked locally (table name, allow-list, keys, headers, body) is checked before the
 * first call to Storage or Key Vault, so a bad request costs nothing and reveals nothing.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import type { TableClient } from '@azure/data-tables';
import { CseError, isCseError } from '../shared/errors';
import { getAppServices, type AppServices } from '../shared/appServices';
import { encryptedPropertiesFor } from '../shared/config/config';
import { isTableAllowed, isValidTableName } from '../shared/config/azureNames';
import type { KeyEncryptionKey } from '../shared/keys/kek';
import { storageErrorCode, storageStatus } from '../shared/storage/storageErrors';
import {
  EncryptedTableClient,
  type EntityPage,
  type PageOptions,
  type ReadEntity,
  type WriteOptions,
} from '../shared/tables/encryptedTableClient';
import { assertWritableEntity } from '../shared/tables/entityEncryption';
import { assertEntityKeys, type EntityRecord, type TableProperties } from '../shared/tables/entityModel';
import { filterPropertyNames, odataString } from '../shared/tables/odataQuery';
import { entityToWire, propertiesFromWire } from '../shared/tables/wireEntity';
import { parseEntityTags } from './http/conditional';
import { errorResponse, jsonError } from './http/errors';
import { declaredContentLength, readSmallBody, routeParam } from './http/headers';

/** Names the properties to encrypt on PUT; on GET it lists the properties that were stored encrypted. */
export const ENCRYPT_HEADER = 'x-cse-encrypt';

/**
 * No entity the Table service accepts (1 MiB as it counts size, strings at 2 bytes per character) needs a JSON
 * body this large even with every character escaped as \uXXXX; a larger body is refused before it is read.
 */
export const MAX_ENTITY_BODY_BYTES = 4 * 1024 * 1024;

/** Keys are at most 1 KiB of UTF-16 (what the service and Azurite enforce): 512 code units. */
export const MAX_KEY_CHARS = 512;

/** Entities per listing page, at most (the service's own maximum). */
export const MAX_PAGE_SIZE = 1000;

// ---------------------------------------------------------------------------------------------------------------
// Request checks (no I/O)

/** CSE_TABLES (compared case-insensitively, as Azure does); `rotations` and the host's own tables never. */
function checkTable(services: AppServices, table: string): void {
  if (!isTableAllowed(services.config.tables, table)) {
    throw new CseError(
      'TableNotAllowed',
      `Table "${table}" is not open to this API (CSE_TABLES; the host's own tables and "rotations" never are).`,
    );
  }
}

/** Azure's table naming rules (InvalidName), checked before the configuration is even loaded. */
function checkTableName(table: string): void {
  if (!isValidTableName(table)) {
    throw new CseError(
      'InvalidName',
      `Table name ${JSON.stringify(table)} is not valid: 3-63 letters and digits, starting with a letter ("tables" is reserved).`,
    );
  }
}

/** Azure's key rules: no / \ # ? or control characters, well-formed Unicode, at most 512 UTF-16 code units. */
function checkKeys(partitionKey: string, rowKey: string | undefined): void {
  assertEntityKeys(partitionKey, rowKey ?? '');
  for (const [what, key] of [
    ['PartitionKey', partitionKey],
    ['RowKey', rowKey ?? ''],
  ] as const) {
    if (key.length > MAX_KEY_CHARS) {
      throw new CseError(
        'InvalidName',
        `${what} is ${key.length} characters; the Table service allows at most ${MAX_KEY_CHARS} (1 KiB of UTF-16).`,
      );
    }
  }
}

interface EntityTarget {
  readonly services: AppServices;
  readonly table: string;
  readonly partitionKey: string;
  readonly rowKey: string;
}

/** Table name, keys, then (with the configuration) the allow-list; nothing here calls out. */
async function entityTarget(request: HttpRequest): Promise<EntityTarget> {
  const table = routeParam(request, 'table');
  const partitionKey = routeParam(request, 'partitionKey');
  const rowKey = routeParam(request, 'rowKey');
  checkTableName(table);
  checkKeys(partitionKey, rowKey);
  const services = await getAppServices();
  checkTable(services, table);
  return { services, table, partitionKey, rowKey };
}

/**
 * `x-cse-encrypt: a,b`: the properties to encrypt, instead of the table's CSE_TABLE_ENCRYPTED_PROPERTIES list.
 * Absent: undefined (the configured list applies). Present but empty: encrypt no property (the entity still gets
 * its metadata). Empty items (`a,,b`) are refused; duplicates are harmless.
 */
export function parseEncryptHeader(value: string | null): string[] | undefined {
  if (value === null) return undefined;
  if (value.trim() === '') return [];
  const names = value.split(',').map((n) => n.trim());
  if (names.some((n) => n === '')) {
    throw new CseError(
      'InvalidRequest',
      `${ENCRYPT_HEADER} has an empty item: give property names separated by commas.`,
    );
  }
  return [...new Set(names)];
}

/** What a PUT's conditional headers ask for. */
type WriteCondition =
  { readonly kind: 'upsert' } | { readonly kind: 'insert' } | { readonly kind: 'replace'; readonly etag: string };

/**
 * No condition: insert or replace. `If-None-Match: *`: insert only. `If-Match: <etag>` or `*`: replace only that
 * (or any existing) version. Table ETags are weak (`W/"datetime'...'"`) and compared by the service as sent.
 */
export function parseWriteCondition(headers: Headers): WriteCondition {
  const ifMatch = parseEntityTags(headers.get('if-match'));
  const ifNoneMatch = parseEntityTags(headers.get('if-none-match'));
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new CseError('InvalidRequest', 'Send If-Match (replace) or If-None-Match: * (insert), not both.');
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== '*') {
      throw new CseError('InvalidRequest', 'If-None-Match on PUT supports only "*" (insert only if absent).');
    }
    return { kind: 'insert' };
  }
  if (ifMatch !== undefined) return { kind: 'replace', etag: singleEtag(ifMatch) };
  return { kind: 'upsert' };
}

/** An If-Match for the Table service: `*` or exactly one entity tag (the service takes one). */
function singleEtag(condition: '*' | readonly string[]): string {
  if (condition === '*') return '*';
  if (condition.length !== 1 || condition[0] === undefined) {
    throw new CseError('InvalidRequest', 'If-Match must be "*" or one ETag (as returned by this API).');
  }
  return condition[0];
}

/**
 * The entity's properties from a PUT body. PartitionKey / RowKey may be present when they equal the URL's (so a
 * GET's output can be sent back), Timestamp and `odata.*` members are ignored (the service owns them).
 */
export function propertiesFromBody(text: string, partitionKey: string, rowKey: string): TableProperties {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CseError('InvalidEntity', "The body must be a JSON object of the entity's properties (wire form).");
  }
  // Not an object: let the wire reader give its error.
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return propertiesFromWire(json);
  const members = { ...(json as Record<string, unknown>) };
  for (const [name, expected] of [
    ['PartitionKey', partitionKey],
    ['RowKey', rowKey],
  ] as const) {
    if (!Object.prototype.hasOwnProperty.call(members, name)) continue;
    if (members[name] !== expected) {
      throw new CseError('InvalidEntity', `The body's ${name} differs from the URL's; the keys come from the URL.`);
    }
    delete members[name];
    delete members[`${name}@odata.type`];
  }
  delete members['Timestamp'];
  delete members['Timestamp@odata.type'];
  return propertiesFromWire(members);
}

async function readEntityBody(request: HttpRequest): Promise<string> {
  const tooLarge = (): CseError =>
    new CseError(
      'EntityTooLarge',
      `The body is larger than ${MAX_ENTITY_BODY_BYTES} bytes; no entity the Table service accepts (1 MiB) is that large.`,
    );
  const declared = declaredContentLength(request.headers);
  if (declared !== undefined && declared > MAX_ENTITY_BODY_BYTES) throw tooLarge();
  return readSmallBody(request, MAX_ENTITY_BODY_BYTES, tooLarge);
}

// ---------------------------------------------------------------------------------------------------------------
// Clients

/** Table clients kept per set of app services, so requests reuse connections (each client has its own pipeline). */
const tableClients = new WeakMap<AppServices, Map<string, TableClient>>();
/** With CSE_TABLES=* any valid name may come; the oldest client is dropped beyond this many. */
const MAX_CACHED_TABLE_CLIENTS = 64;

function tableClient(services: AppServices, table: string): TableClient {
  let clients = tableClients.get(services);
  if (clients === undefined) tableClients.set(services, (clients = new Map()));
  let client = clients.get(table);
  if (client === undefined) {
    client = services.storage.tableClient(table);
    if (clients.size >= MAX_CACHED_TABLE_CLIENTS) clients.delete(clients.keys().next().value as string);
    clients.set(table, client);
  }
  return client;
}

/**
 * Reads never wrap a content key, so they do not look up the active key (for a versionless Key Vault key id that
 * would be a vault call, and a disabled active key would then block reading what older keys protect). The client
 * still needs a KEK; this one only says what went wrong if a read path ever tried to write.
 */
function noWriteKey(keyId: string): KeyEncryptionKey {
  const refuse = (): Promise<never> => Promise.reject(new Error('a read operation attempted to wrap or unwrap a key'));
  return { keyId, defaultAlgorithm: 'A256KW', wrapKey: refuse, unwrapKey: refuse };
}

function entityClient(services: AppServices, table: string, writeKey?: KeyEncryptionKey): EncryptedTableClient {
  const { config, keyRing } = services;
  return new EncryptedTableClient(
    tableClient(services, table),
    { kek: writeKey ?? noWriteKey(keyRing.activeKeyId.id), resolver: keyRing.resolver },
    {
      protocol: config.tableProtocol,
      allowV1: config.allowV1,
      allowPlaintextReads: config.allowPlaintextReads,
      encryptedProperties: encryptedPropertiesFor(config, table),
    },
  );
}

/** The library reports a missing table as EntityNotFound whose cause is the service's TableNotFound. */
function isTableMissing(e: unknown): boolean {
  return isCseError(e, 'EntityNotFound') && storageErrorCode(e.cause) === 'TableNotFound';
}

/** Runs a write; if the table does not exist yet, creates it (it is allowed: checked before) and writes again. */
async function writeCreatingTable<T>(client: EncryptedTableClient, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    if (!isTableMissing(e)) throw e;
    await client.createTableIfMissing();
    return write();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// PUT tables/{table}/entities/{partitionKey}/{rowKey}

export async function putEntity(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const { services, table, partitionKey, rowKey } = await entityTarget(request);
    const encrypt = parseEncryptHeader(request.headers.get(ENCRYPT_HEADER));
    const condition = parseWriteCondition(request.headers);
    const properties = propertiesFromBody(await readEntityBody(request), partitionKey, rowKey);
    const entity: EntityRecord = { partitionKey, rowKey, properties };
    assertWritableEntity(entity); // names and values, before the key is fetched
    const client = entityClient(services, table, await services.keyRing.activeKey());
    const options: WriteOptions = encrypt === undefined ? {} : { encrypt };
    switch (condition.kind) {
      case 'upsert': {
        const { etag } = await writeCreatingTable(client, () => client.upsert(entity, options));
        return { status: 204, headers: { etag } };
      }
      case 'insert': {
        const { etag } = await writeCreatingTable(client, () => client.insert(entity, options));
        return { status: 201, headers: { etag, location: entityPath(table, partitionKey, rowKey) } };
      }
      case 'replace':
        try {
          const { etag } = await client.replace(entity, condition.etag, options);
          return { status: 204, headers: { etag } };
        } catch (e) {
          // If-Match on an entity (or table) that does not exist fails the condition (RFC 9110 §13.1.1), as for blobs.
          if (!isCseError(e, 'EntityNotFound')) throw e;
          throw new CseError('ConditionNotMet', 'The entity does not exist, so it cannot match If-Match.', {
            cause: e,
          });
        }
    }
  } catch (e) {
    return errorResponse(e, context);
  }
}

/** The entity's URL path for Location (host.json keeps the default `api` route prefix). */
function entityPath(table: string, partitionKey: string, rowKey: string): string {
  return `/api/tables/${table}/entities/${encodeURIComponent(partitionKey)}/${encodeURIComponent(rowKey)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// GET / DELETE tables/{table}/entities/{partitionKey}/{rowKey}

export async function getEntity(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const { services, table, partitionKey, rowKey } = await entityTarget(request);
    const entity = await entityClient(services, table).get(partitionKey, rowKey);
    const headers: Record<string, string> = { etag: entity.etag, 'cache-control': 'no-store' };
    if (entity.encryption !== undefined) headers[ENCRYPT_HEADER] = entity.encryption.encryptedProperties.join(',');
    return { status: 200, headers, jsonBody: wireEntity(entity) };
  } catch (e) {
    return errorResponse(e, context);
  }
}

export async function deleteEntity(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const { services, table, partitionKey, rowKey } = await entityTarget(request);
    const ifMatch = parseEntityTags(request.headers.get('if-match'));
    const etag = ifMatch === undefined ? '*' : singleEtag(ifMatch);
    await entityClient(services, table).delete(partitionKey, rowKey, { etag });
    return { status: 204 };
  } catch (e) {
    return errorResponse(e, context);
  }
}

function wireEntity(entity: ReadEntity): Record<string, unknown> {
  return entityToWire({
    partitionKey: entity.partitionKey,
    rowKey: entity.rowKey,
    properties: entity.properties,
    etag: entity.etag,
    timestamp: entity.timestamp,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// GET tables/{table}/entities/{partitionKey}

/**
 * One page of a partition, decrypted: `{"entities":[...],"continuationToken":"..."|null}`. `filter` is an OData
 * filter over the partition; it must not name an encrypted property (EncryptedPropertyFilter): the table's
 * configured list is vetted before the query, and the names each returned entity lists as encrypted after it
 * (a filter on a property encrypted per write cannot be caught when no entity matched, since nothing is returned).
 * Every entity of the page must decrypt, or the page fails: nothing unauthenticated is ever served.
 */
export async function listEntities(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const table = routeParam(request, 'table');
    const partitionKey = routeParam(request, 'partitionKey');
    checkTableName(table);
    checkKeys(partitionKey, undefined);
    const query = request.query;
    const pageSize = parsePageSize(query.get('maxResults'));
    const userFilter = parseFilter(query.get('filter'));
    const continuationToken = query.get('continuationToken') || undefined;
    const services = await getAppServices();
    checkTable(services, table);

    const page = await queryPartition(entityClient(services, table), partitionKey, userFilter, {
      continuationToken,
      pageSize,
    });
    if (userFilter !== undefined) assertFilterMissedEncrypted(userFilter, page.entities);
    return {
      status: 200,
      headers: { 'cache-control': 'no-store' },
      jsonBody: { entities: page.entities.map(wireEntity), continuationToken: page.continuationToken ?? null },
    };
  } catch (e) {
    return errorResponse(e, context);
  }
}

/** One page of the partition (ANDed with the caller's filter). A missing table is an empty partition, as for blobs. */
async function queryPartition(
  client: EncryptedTableClient,
  partitionKey: string,
  userFilter: string | undefined,
  options: PageOptions,
): Promise<EntityPage> {
  const partition = `PartitionKey eq ${odataString(partitionKey)}`;
  try {
    return await client.query({
      ...options,
      filter: userFilter === undefined ? partition : `${partition} and (${userFilter})`,
    });
  } catch (e) {
    if (isTableMissing(e)) return { entities: [], continuationToken: undefined };
    if (userFilter !== undefined && !(e instanceof CseError) && storageStatus(e) === 400) {
      throw new CseError('InvalidRequest', 'The Table service rejected the filter as malformed.', { cause: e });
    }
    throw e;
  }
}

function parsePageSize(text: string | null): number | undefined {
  if (text === null || text === '') return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_PAGE_SIZE) {
    throw new CseError('InvalidRequest', `maxResults must be an integer from 1 to ${MAX_PAGE_SIZE}.`);
  }
  return n;
}

/**
 * The caller's filter, which is ANDed with the partition condition: its parentheses must balance outside string
 * literals, or `x) or (true` could widen the query beyond the partition of the URL.
 */
export function parseFilter(text: string | null): string | undefined {
  if (text === null || text.trim() === '') return undefined;
  let depth = 0;
  let inLiteral = false;
  for (const c of text) {
    if (c === "'")
      inLiteral = !inLiteral; // '' inside a literal toggles twice: still inside
    else if (!inLiteral && c === '(') depth++;
    else if (!inLiteral && c === ')' && --depth < 0) break;
  }
  if (depth !== 0 || inLiteral) {
    throw new CseError('InvalidRequest', 'The filter has unbalanced parentheses or an unterminated string literal.');
  }
  return text.trim();
}

function assertFilterMissedEncrypted(filter: string, entities: readonly ReadEntity[]): void {
  const named = new Set(filterPropertyNames(filter));
  for (const e of entities) {
    const hit = e.encryption?.encryptedProperties.find((n) => named.has(n));
    if (hit !== undefined) {
      throw new CseError(
        'EncryptedPropertyFilter',
        `The filter mentions ${hit}, which is stored encrypted in entity (PartitionKey ${JSON.stringify(e.partitionKey)}, ` +
          `RowKey ${JSON.stringify(e.rowKey)}): the service compares only ciphertext there, so the result would be wrong. ` +
          'Filter on keys or unencrypted properties and check encrypted values after reading.',
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Registration

/** One function for the entity route; the method picks the handler. */
export async function entityRoute(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  switch (request.method) {
    case 'PUT':
      return putEntity(request, context);
    case 'GET':
      return getEntity(request, context);
    case 'DELETE':
      return deleteEntity(request, context);
    case 'PATCH':
      return jsonError(
        'UnsupportedOperation',
        'Merge is not supported on encrypted entities: a merge cannot update the list of encrypted properties ' +
          'stored in the entity. GET the entity, change it, and PUT it back with If-Match.',
        { allow: 'GET, PUT, DELETE' },
      );
    default:
      return jsonError('MethodNotAllowed', `${request.method} is not supported on this route.`, {
        allow: 'GET, PUT, DELETE',
      });
  }
}

app.http('tableEntity', {
  methods: ['GET', 'PUT', 'DELETE', 'PATCH'],
  route: 'tables/{table}/entities/{partitionKey}/{rowKey}',
  authLevel: 'function',
  handler: entityRoute,
});

app.http('tableEntities', {
  methods: ['GET'],
  route: 'tables/{table}/entities/{partitionKey}',
  authLevel: 'function',
  handler: listEntities,
});
