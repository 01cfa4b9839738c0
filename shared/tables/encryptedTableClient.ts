/**
 * An encrypting wrapper over one @azure/data-tables TableClient: every write encrypts (entityEncryption.ts),
 * every read decrypts, and the operations that cannot work on encrypted entities are refused with a clear
 * CseError instead of silently corrupting them (FORMAT.md §6.6):
 *
 * - Insert / Replace / InsertOrReplace / Delete and transactions of those work; each entity gets its own key.
 * - Merge and InsertOrMerge are refused ('UnsupportedOperation'): a merge cannot update the encrypted name list,
 *   so merged encrypted properties would be left unreadable or, worse, readable as ciphertext.
 * - $select also fetches the two metadata properties; a $filter naming an encrypted property is refused
 *   ('EncryptedPropertyFilter').
 * - Listings return one page at a time with an opaque continuation token.
 *
 * Key rotation uses readEntityKeyMetadata / writeEntityKeyMetadata / listEntityKeyMetadata, which touch only
 * `_ClientEncryptionMetadata1` (select it alone; Merge it alone under If-Match), never the ciphertext.
 *
 * The HTTP functions map the CseError codes to statuses; service failures other than the ones mapped in
 * tableErrors.ts are passed on unchanged.
 */
import type { TableClient, TransactionAction } from '@azure/data-tables';
import { CseError } from '../errors';
import { mapBounded } from '../mapBounded';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';
import {
  assertWritableEntity,
  decryptEntity,
  encryptEntity,
  type DecryptedEntity,
  type EntityEncryptionInfo,
} from './entityEncryption';
import { KEY_METADATA_PROPERTY, assertEntityKeys, getProperty, type EntityRecord } from './entityModel';
import { assertFilterAvoidsEncrypted, odataString, selectWithMetadata, withNames } from './odataQuery';
import { fromSdkEntity, toSdkEntity, type SdkReadEntity } from './sdkEntity';
import { mapTableError } from './tableErrors';
import { normalizeContinuationToken } from './continuationToken';
import { jsonDoubleMembers } from './jsonDoubleMembers';
import {
  parseTableKeyMetadata,
  serializeTableKeyMetadata,
  type TableKeyMetadata,
  type TableProtocol,
} from './tableKeyMetadata';

export interface TableKeys {
  /** Wraps the content key of every entity written. */
  readonly kek: KeyEncryptionKey;
  /** Resolves (and vets) the key ids stored in entities being read. */
  readonly resolver: KeyResolver;
}

export interface EncryptedTableClientOptions {
  /** Protocol of new writes. Default '2.0'. '1.0' requires allowV1 (CSE_TABLE_PROTOCOL=1.0 needs CSE_ALLOW_V1). */
  readonly protocol?: TableProtocol;
  /** Read legacy 1.0 entities (CSE_ALLOW_V1). Default false. */
  readonly allowV1?: boolean;
  /** Return entities that carry no encryption metadata as they are (CSE_ALLOW_PLAINTEXT_READS). Default false. */
  readonly allowPlaintextReads?: boolean;
  /** Properties encrypted when a write names none (the table's CSE_TABLE_ENCRYPTED_PROPERTIES list). */
  readonly encryptedProperties?: readonly string[];
  /** `KeyWrappingMetadata.EncryptionLibrary` written. */
  readonly encryptionLibrary?: string;
  /** How many entities of a page are decrypted at once (each may call Key Vault). Default 8. */
  readonly decryptConcurrency?: number;
}

export interface WriteOptions {
  /**
   * Properties to encrypt for this write, instead of the configured list. Every name must be a String property
   * of the entity. (Names in the configured list that an entity lacks are skipped; names given here are not.)
   */
  readonly encrypt?: readonly string[];
}

/** A decrypted entity with what the service adds. */
export interface ReadEntity extends DecryptedEntity {
  readonly etag: string;
  /** Timestamp as the service wrote it (ISO 8601), when returned. */
  readonly timestamp: string | undefined;
}

export interface EntityPage {
  readonly entities: ReadEntity[];
  /** Pass back to get the next page; undefined on the last page. */
  readonly continuationToken: string | undefined;
}

export interface PageOptions {
  readonly continuationToken?: string | undefined;
  /** Entities per page (the service returns at most 1000). */
  readonly pageSize?: number | undefined;
  /** Properties to return ($select); the metadata properties are added automatically. */
  readonly select?: readonly string[] | undefined;
}

export interface QueryOptions extends PageOptions {
  /** OData $filter; must not name an encrypted property. */
  readonly filter?: string | undefined;
  /** Further names to treat as encrypted when vetting the filter (besides the configured list). */
  readonly encryptedProperties?: readonly string[] | undefined;
}

/** Transaction actions (all entities in one partition; at most 100). Merge is deliberately not among them. */
export type EncryptedTransactionAction =
  | { readonly kind: 'insert'; readonly entity: EntityRecord; readonly encrypt?: readonly string[] }
  | { readonly kind: 'upsert'; readonly entity: EntityRecord; readonly encrypt?: readonly string[] }
  | {
      readonly kind: 'replace';
      readonly entity: EntityRecord;
      readonly etag?: string;
      readonly encrypt?: readonly string[];
    }
  /** Unconditional: @azure/data-tables 13.3 sends no If-Match for a delete inside a transaction. */
  | { readonly kind: 'delete'; readonly partitionKey: string; readonly rowKey: string };

export interface TransactionResult {
  readonly status: number;
  readonly results: readonly { readonly rowKey: string; readonly status: number; readonly etag: string | undefined }[];
}

/** `_ClientEncryptionMetadata1` of one entity, with the ETag that guards a rewrite. */
export interface EntityKeyMetadataRecord {
  readonly partitionKey: string;
  readonly rowKey: string;
  readonly etag: string;
  readonly metadata: TableKeyMetadata;
}

export type KeyMetadataItem =
  | ({ readonly kind: 'encrypted' } & EntityKeyMetadataRecord)
  | {
      readonly kind: 'invalid';
      readonly partitionKey: string;
      readonly rowKey: string;
      readonly etag: string;
      readonly error: CseError;
    };

export interface KeyMetadataPage {
  /** Entities with `_ClientEncryptionMetadata1` (parsed, or the parse error). */
  readonly items: KeyMetadataItem[];
  /** Entities on this page without any encryption metadata. */
  readonly unencrypted: number;
  readonly continuationToken: string | undefined;
}

const MAX_TRANSACTION_ACTIONS = 100;

export class EncryptedTableClient {
  readonly #table: TableClient;
  readonly #keys: TableKeys;
  readonly #protocol: TableProtocol;
  readonly #allowV1: boolean;
  readonly #allowPlaintext: boolean;
  readonly #defaultEncrypted: readonly string[];
  readonly #encryptionLibrary: string | undefined;
  readonly #concurrency: number;

  constructor(table: TableClient, keys: TableKeys, options: EncryptedTableClientOptions = {}) {
    const protocol = options.protocol ?? '2.0';
    if (protocol !== '1.0' && protocol !== '2.0') {
      throw new CseError('ConfigurationError', `table protocol ${JSON.stringify(protocol)} is not 1.0 or 2.0`);
    }
    if (protocol === '1.0' && options.allowV1 !== true) {
      throw new CseError(
        'ConfigurationError',
        'writing table protocol 1.0 (CSE_TABLE_PROTOCOL=1.0) requires reading 1.0 to be enabled (CSE_ALLOW_V1)',
      );
    }
    this.#table = table;
    this.#keys = keys;
    this.#protocol = protocol;
    this.#allowV1 = options.allowV1 === true;
    this.#allowPlaintext = options.allowPlaintextReads === true;
    this.#defaultEncrypted = [...(options.encryptedProperties ?? [])];
    this.#encryptionLibrary = options.encryptionLibrary;
    this.#concurrency = Math.max(1, Math.floor(options.decryptConcurrency ?? 8));
  }

  get tableName(): string {
    return this.#table.tableName;
  }

  /** Protocol used for new writes. */
  get protocol(): TableProtocol {
    return this.#protocol;
  }

  /** Creates the table if it does not exist (the SDK treats "already exists" as success). */
  async createTableIfMissing(): Promise<void> {
    await this.#table.createTable();
  }

  /** Encrypts an entity exactly as a write would, without sending it. */
  async encrypt(entity: EntityRecord, options: WriteOptions = {}): Promise<EntityRecord> {
    assertWritableEntity(entity);
    const names =
      options.encrypt ?? this.#defaultEncrypted.filter((n) => getProperty(entity.properties, n) !== undefined);
    return encryptEntity(entity, {
      kek: this.#keys.kek,
      protocol: this.#protocol,
      encryptedProperties: names,
      ...(this.#encryptionLibrary === undefined ? {} : { encryptionLibrary: this.#encryptionLibrary }),
    });
  }

  /** Insert or replace (no condition). */
  async upsert(entity: EntityRecord, options: WriteOptions = {}): Promise<{ etag: string }> {
    const stored = await this.encrypt(entity, options);
    const r = await this.#call(stored, () => this.#table.upsertEntity(toSdkEntity(stored), 'Replace'));
    return { etag: requireEtag(r.etag) };
  }

  /** Insert only: CseError 'EntityExists' when the entity exists. */
  async insert(entity: EntityRecord, options: WriteOptions = {}): Promise<{ etag: string }> {
    const stored = await this.encrypt(entity, options);
    const r = await this.#call(stored, () => this.#table.createEntity(toSdkEntity(stored)));
    return { etag: requireEtag(r.etag) };
  }

  /**
   * Replace the version with this ETag ('*' for any version): CseError 'ConditionNotMet' when it changed,
   * 'EntityNotFound' when it does not exist.
   */
  async replace(entity: EntityRecord, etag: string, options: WriteOptions = {}): Promise<{ etag: string }> {
    requireIfMatch(etag);
    const stored = await this.encrypt(entity, options);
    const r = await this.#call(stored, () => this.#table.updateEntity(toSdkEntity(stored), 'Replace', { etag }));
    return { etag: requireEtag(r.etag) };
  }

  /** Refused: see the module comment. */
  merge(): never {
    throw mergeRefused();
  }

  /** Refused: see the module comment. */
  upsertMerge(): never {
    throw mergeRefused();
  }

  /** CseError 'EntityNotFound' when absent. `select` limits the properties returned. */
  async get(partitionKey: string, rowKey: string, options: { select?: readonly string[] } = {}): Promise<ReadEntity> {
    assertEntityKeys(partitionKey, rowKey);
    const select = selectWithMetadata(options.select);
    let body: string | undefined;
    const raw = await this.#call({ partitionKey, rowKey }, () =>
      this.#table.getEntity(partitionKey, rowKey, {
        disableTypeConversion: true,
        ...(select === undefined ? {} : { queryOptions: { select } }),
        onResponse: (response) => {
          body = response.bodyAsText ?? undefined;
        },
      }),
    );
    return this.#decrypt(fromSdkEntity(raw, doubleMembersOf(body)[0]), options.select);
  }

  /** Deletes (any version, or only `etag`): CseError 'EntityNotFound' / 'ConditionNotMet'. */
  async delete(partitionKey: string, rowKey: string, options: { etag?: string } = {}): Promise<void> {
    assertEntityKeys(partitionKey, rowKey);
    const etag = options.etag ?? '*';
    requireIfMatch(etag);
    await this.#call({ partitionKey, rowKey }, () => this.#table.deleteEntity(partitionKey, rowKey, { etag }));
  }

  /** One page of a partition, decrypted. */
  listPartition(partitionKey: string, options: PageOptions = {}): Promise<EntityPage> {
    assertEntityKeys(partitionKey, '');
    return this.query({ ...options, filter: `PartitionKey eq ${odataString(partitionKey)}` });
  }

  /** One page of a query, decrypted. */
  async query(options: QueryOptions = {}): Promise<EntityPage> {
    if (options.filter !== undefined) {
      assertFilterAvoidsEncrypted(options.filter, [...this.#defaultEncrypted, ...(options.encryptedProperties ?? [])]);
    }
    const select = selectWithMetadata(options.select);
    const page = await this.#page(options.filter, select, options);
    const entities = await mapBounded(page.entities, this.#concurrency, (e) => this.#decrypt(e, options.select));
    return { entities, continuationToken: page.continuationToken };
  }

  /** Submits one transaction; every written entity is encrypted with its own key. */
  async submitTransaction(actions: readonly EncryptedTransactionAction[]): Promise<TransactionResult> {
    if (actions.length === 0 || actions.length > MAX_TRANSACTION_ACTIONS) {
      throw new CseError(
        'InvalidEntity',
        `a transaction holds 1 to ${MAX_TRANSACTION_ACTIONS} actions, got ${actions.length}`,
      );
    }
    const sdkActions: TransactionAction[] = [];
    for (const action of actions) sdkActions.push(await this.#sdkAction(action));
    const partitionKeys = new Set(actions.map((a) => (a.kind === 'delete' ? a.partitionKey : a.entity?.partitionKey)));
    if (partitionKeys.size !== 1) {
      throw new CseError('InvalidEntity', 'all entities of a transaction must be in the same partition');
    }
    const pk = [...partitionKeys][0];
    const r = await this.#call({ partitionKey: pk }, () => this.#table.submitTransaction(sdkActions));
    return {
      status: r.status,
      results: r.subResponses.map((s) => ({ rowKey: s.rowKey ?? '', status: s.status, etag: s.etag })),
    };
  }

  async #sdkAction(action: EncryptedTransactionAction): Promise<TransactionAction> {
    const kind: string = action.kind;
    switch (action.kind) {
      case 'insert':
        return ['create', toSdkEntity(await this.encrypt(action.entity, writeOptions(action.encrypt)))];
      case 'upsert':
        return ['upsert', toSdkEntity(await this.encrypt(action.entity, writeOptions(action.encrypt))), 'Replace'];
      case 'replace': {
        const etag = action.etag ?? '*';
        requireIfMatch(etag);
        const stored = await this.encrypt(action.entity, writeOptions(action.encrypt));
        return ['update', toSdkEntity(stored), 'Replace', { etag }];
      }
      case 'delete':
        assertEntityKeys(action.partitionKey, action.rowKey);
        if ((action as { etag?: unknown }).etag !== undefined) {
          throw new CseError(
            'UnsupportedOperation',
            'a delete inside a transaction cannot carry an ETag (the Tables SDK sends none); delete it on its own with If-Match',
          );
        }
        return ['delete', { partitionKey: action.partitionKey, rowKey: action.rowKey }];
      default:
        // Reached only from untyped callers (JSON): merge, upsertMerge or anything else.
        if (/merge/i.test(kind)) throw mergeRefused();
        throw new CseError('UnsupportedOperation', `transaction action ${JSON.stringify(kind)} is not supported`);
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Key metadata only (key rotation)

  /** Reads only `_ClientEncryptionMetadata1` and the ETag. CseError 'NotEncrypted' if the entity has none. */
  async readEntityKeyMetadata(partitionKey: string, rowKey: string): Promise<EntityKeyMetadataRecord> {
    assertEntityKeys(partitionKey, rowKey);
    const raw = await this.#call({ partitionKey, rowKey }, () =>
      this.#table.getEntity(partitionKey, rowKey, {
        disableTypeConversion: true,
        queryOptions: { select: withNames([KEY_METADATA_PROPERTY], []) },
      }),
    );
    const item = keyMetadataItem(fromSdkEntity(raw));
    if (item === undefined) {
      throw new CseError('NotEncrypted', `${describe(partitionKey, rowKey)} carries no encryption metadata`);
    }
    if (item.kind === 'invalid') throw item.error;
    return item;
  }

  /**
   * Replaces only `_ClientEncryptionMetadata1` (a Merge carrying that one property) if the entity still has
   * `etag`, and returns the new ETag. '*' is refused: the metadata must pair with the ciphertext it was read
   * with, or the entity would become undecryptable. CseError 'ConditionNotMet' / 'EntityNotFound'.
   */
  async writeEntityKeyMetadata(
    partitionKey: string,
    rowKey: string,
    metadata: TableKeyMetadata,
    etag: string,
  ): Promise<{ etag: string }> {
    assertEntityKeys(partitionKey, rowKey);
    if (typeof etag !== 'string' || etag.length === 0 || etag === '*') {
      throw new CseError(
        'UnsupportedOperation',
        'writeEntityKeyMetadata needs the ETag read with the metadata (not "*"), so the key always matches the ciphertext',
      );
    }
    const value = serializeTableKeyMetadata(metadata);
    const r = await this.#call({ partitionKey, rowKey }, () =>
      this.#table.updateEntity({ partitionKey, rowKey, [KEY_METADATA_PROPERTY]: value }, 'Merge', { etag }),
    );
    return { etag: requireEtag(r.etag) };
  }

  /** One page of `_ClientEncryptionMetadata1` values (only that property is fetched). */
  async listEntityKeyMetadata(
    options: { filter?: string } & Omit<PageOptions, 'select'> = {},
  ): Promise<KeyMetadataPage> {
    if (options.filter !== undefined) assertFilterAvoidsEncrypted(options.filter, this.#defaultEncrypted);
    const page = await this.#page(options.filter, withNames([KEY_METADATA_PROPERTY], []), options);
    const items: KeyMetadataItem[] = [];
    let unencrypted = 0;
    for (const e of page.entities) {
      const item = keyMetadataItem(e);
      if (item === undefined) unencrypted++;
      else items.push(item);
    }
    return { items, unencrypted, continuationToken: page.continuationToken };
  }

  // -------------------------------------------------------------------------------------------------------------

  async #page(
    filter: string | undefined,
    select: string[] | undefined,
    options: PageOptions,
  ): Promise<{ entities: SdkReadEntity[]; continuationToken: string | undefined }> {
    const continuationToken = normalizeContinuationToken(options.continuationToken);
    const pageSize = options.pageSize;
    if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000)) {
      throw new CseError('InvalidEntity', `page size must be 1 to 1000, got ${pageSize}`);
    }
    const queryOptions = {
      ...(filter === undefined ? {} : { filter }),
      ...(select === undefined ? {} : { select }),
    };
    let body: string | undefined;
    const pages = this.#table
      .listEntities<Record<string, unknown>>({
        queryOptions,
        disableTypeConversion: true,
        onResponse: (response) => {
          body = response.bodyAsText ?? undefined;
        },
      })
      .byPage({
        ...(continuationToken === undefined ? {} : { continuationToken }),
        ...(pageSize === undefined ? {} : { maxPageSize: pageSize }),
      });
    const next = await this.#call({}, () => pages.next());
    if (next.done === true || next.value === undefined) return { entities: [], continuationToken: undefined };
    const page = next.value;
    // Object 0 is the response wrapper {"value":[...]}; the entities follow in order.
    const doubles = doubleMembersOf(body).slice(1);
    return {
      entities: page.map((raw, i) => fromSdkEntity(raw as Record<string, unknown>, doubles[i])),
      continuationToken: normalizeContinuationToken(page.continuationToken),
    };
  }

  async #decrypt(e: SdkReadEntity, select: readonly string[] | undefined): Promise<ReadEntity> {
    const decrypted = await decryptEntity(e, {
      resolver: this.#keys.resolver,
      allowV1: this.#allowV1,
      allowPlaintext: this.#allowPlaintext,
      ...(selectWithMetadata(select) === undefined ? {} : { selected: select }),
    });
    return { ...decrypted, etag: e.etag, timestamp: e.timestamp };
  }

  async #call<T>(at: { partitionKey?: string; rowKey?: string }, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw mapTableError(e, `${describe(at.partitionKey, at.rowKey)} in table ${this.#table.tableName}`);
    }
  }
}

export type { EntityEncryptionInfo };

function keyMetadataItem(e: SdkReadEntity): KeyMetadataItem | undefined {
  const m1 = getProperty(e.properties, KEY_METADATA_PROPERTY);
  if (m1 === undefined) return undefined;
  const base = { partitionKey: e.partitionKey, rowKey: e.rowKey, etag: e.etag };
  try {
    if (m1.type !== 'String') throw new CseError('InvalidEncryptionData', `${KEY_METADATA_PROPERTY} is not a String`);
    return { kind: 'encrypted', ...base, metadata: parseTableKeyMetadata(m1.value) };
  } catch (error) {
    if (!(error instanceof CseError)) throw error;
    return { kind: 'invalid', ...base, error };
  }
}

function doubleMembersOf(body: string | undefined): Set<string>[] {
  return body === undefined ? [] : jsonDoubleMembers(body);
}

function writeOptions(encrypt: readonly string[] | undefined): WriteOptions {
  return encrypt === undefined ? {} : { encrypt };
}

function mergeRefused(): CseError {
  return new CseError(
    'UnsupportedOperation',
    'Merge and InsertOrMerge are not supported on encrypted tables: a merge cannot update the list of encrypted ' +
      'properties stored in the entity. Read the entity, change it, and Replace it (with If-Match).',
  );
}

function requireIfMatch(etag: string): void {
  if (typeof etag !== 'string' || etag.length === 0) {
    throw new CseError('ConditionNotMet', 'an If-Match ETag must be a non-empty string (or "*")');
  }
}

function requireEtag(etag: string | undefined): string {
  if (etag === undefined) throw new CseError('InvalidEntity', 'the service returned no ETag for the write');
  return etag;
}

function describe(partitionKey?: string, rowKey?: string): string {
  if (partitionKey === undefined) return 'query';
  if (rowKey === undefined) return `partition ${JSON.stringify(partitionKey)}`;
  return `entity (PartitionKey ${JSON.stringify(partitionKey)}, RowKey ${JSON.stringify(rowKey)})`;
}
