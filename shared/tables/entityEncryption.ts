/**
 * Encrypting and decrypting whole table entities, without any network: the entity-level half of the table
 * format (FORMAT.md §6 for 1.0, docs/TABLE-FORMAT.md for 2.0). EncryptedTableClient moves the results through
 * @azure/data-tables; the HTTP functions and the rotation engine build on these.
 *
 * An encrypted entity is the caller's entity with each chosen String property replaced by an Edm.Binary
 * ciphertext, then `_ClientEncryptionMetadata2` (Edm.Binary, the encrypted list of those names) and
 * `_ClientEncryptionMetadata1` (Edm.String, the wrapped content key; see tableKeyMetadata.ts). Each entity gets
 * a fresh content key (and for 1.0 a fresh entity IV).
 */
import { randomBytes } from 'node:crypto';
import { CseError } from '../errors';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';
import { wrapContentKey } from '../crypto/keyWrapPayload';
import { decodeBase64Strict } from '../crypto/strictBase64';
import {
  KEY_METADATA_PROPERTY,
  NAME_LIST_PROPERTY,
  assertEntityKeys,
  assertPropertyValue,
  assertUserPropertyName,
  getProperty,
  isReservedPropertyName,
  isSystemPropertyName,
  properties,
  propertyEntries,
  type EntityRecord,
  type TableValue,
} from './entityModel';
import { assertEntityWithinLimits } from './entityLimits';
import { parseNameList, serializeNameListV1, serializeNameListV2 } from './nameList';
import {
  decodeUtf8,
  v1Decrypt,
  v1Encrypt,
  v1PropertyIv,
  v2Decrypt,
  v2Encrypt,
  type PropertyLocation,
} from './propertyCipher';
import {
  TABLE_ENCRYPTION_LIBRARY,
  parseTableKeyMetadata,
  serializeTableKeyMetadata,
  unwrapEntityKey,
  usesLegacyJavaLayout,
  type TableKeyMetadata,
  type TableProtocol,
} from './tableKeyMetadata';

const CEK_LENGTH = 32;
const ENTITY_IV_LENGTH = 16;

export interface EncryptEntityOptions {
  /** The key-encryption key that wraps the entity's new content key. */
  readonly kek: KeyEncryptionKey;
  /** Default '2.0'. '1.0' only for entities that legacy .NET/Java/Python readers must read. */
  readonly protocol?: TableProtocol;
  /** Names of String properties to encrypt; every name must be a String property of the entity. */
  readonly encryptedProperties: readonly string[];
  /** `KeyWrappingMetadata.EncryptionLibrary`; default TABLE_ENCRYPTION_LIBRARY. Must not contain "Java". */
  readonly encryptionLibrary?: string;
  /** Test vectors only: the content key (a fresh random one otherwise). */
  readonly cek?: Uint8Array;
  /** Test vectors only, 1.0 only: the entity IV. */
  readonly entityIv?: Uint8Array;
}

/**
 * Encrypts an entity for storage. Throws CseError: InvalidName / ReservedMetadata / InvalidEntity (bad keys,
 * names or values), PropertyNotEncryptable (a named property that is absent, not a String, or a key),
 * EntityTooLarge (the stored form breaks a service limit), and what the KEK throws.
 */
export async function encryptEntity(entity: EntityRecord, options: EncryptEntityOptions): Promise<EntityRecord> {
  const protocol = options.protocol ?? '2.0';
  if (protocol !== '1.0' && protocol !== '2.0') {
    throw new CseError(
      'UnsupportedProtocol',
      `table protocol ${JSON.stringify(protocol)} cannot be written (1.0 or 2.0)`,
    );
  }
  assertWritableEntity(entity);
  const toEncrypt = checkEncryptedNames(entity, options.encryptedProperties);
  const library = options.encryptionLibrary ?? TABLE_ENCRYPTION_LIBRARY;
  if (library.includes('Java')) {
    // Readers would then take the entity for a legacy Java one and derive the wrong IVs (FORMAT.md §6.5).
    throw new CseError('ConfigurationError', 'the EncryptionLibrary name must not contain "Java"');
  }

  const cek = options.cek === undefined ? randomBytes(CEK_LENGTH) : Buffer.from(options.cek);
  try {
    if (cek.length !== CEK_LENGTH) throw new CseError('InvalidKey', `a content key is ${CEK_LENGTH} bytes`);
    const entityIv = protocol === '1.0' ? Buffer.from(options.entityIv ?? randomBytes(ENTITY_IV_LENGTH)) : undefined;
    if (entityIv !== undefined && entityIv.length !== ENTITY_IV_LENGTH) {
      throw new CseError('InvalidKey', `an entity IV is ${ENTITY_IV_LENGTH} bytes`);
    }
    const seal = (name: string, plaintext: Buffer): TableValue => {
      const at = { partitionKey: entity.partitionKey, rowKey: entity.rowKey, name };
      const value =
        entityIv === undefined
          ? v2Encrypt(cek, at, plaintext)
          : v1Encrypt(cek, v1PropertyIv(entityIv, at, false), plaintext);
      return { type: 'Binary', value };
    };

    const names: string[] = [];
    const out: [string, TableValue][] = [];
    for (const [name, v] of propertyEntries(entity.properties)) {
      if (toEncrypt.has(name) && v.type === 'String') {
        names.push(name);
        out.push([name, seal(name, Buffer.from(v.value, 'utf8'))]);
      } else {
        out.push([name, v]);
      }
    }
    const list = protocol === '1.0' ? serializeNameListV1(names) : serializeNameListV2(names);
    out.push([NAME_LIST_PROPERTY, seal(NAME_LIST_PROPERTY, Buffer.from(list, 'utf8'))]);

    const wrappedContentKey = await wrapContentKey(options.kek, cek, protocol);
    const keyWrappingMetadata = { EncryptionLibrary: library };
    const metadata: TableKeyMetadata =
      entityIv === undefined
        ? { protocol: '2.0', wrappedContentKey, keyWrappingMetadata }
        : { protocol: '1.0', wrappedContentKey, entityIv, keyWrappingMetadata };
    out.push([KEY_METADATA_PROPERTY, { type: 'String', value: serializeTableKeyMetadata(metadata) }]);

    const stored: EntityRecord = {
      partitionKey: entity.partitionKey,
      rowKey: entity.rowKey,
      properties: properties(out),
    };
    assertEntityWithinLimits(stored, toEncrypt);
    return stored;
  } finally {
    cek.fill(0);
  }
}

/** Checks keys, names and values of an entity a caller wants to store (also used for unencrypted writes). */
export function assertWritableEntity(entity: EntityRecord): void {
  assertEntityKeys(entity.partitionKey, entity.rowKey);
  for (const [name, v] of propertyEntries(entity.properties)) {
    assertUserPropertyName(name);
    assertPropertyValue(name, v);
  }
}

function checkEncryptedNames(entity: EntityRecord, names: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const name of names) {
    if (isSystemPropertyName(name) || isReservedPropertyName(name)) {
      throw new CseError(
        'PropertyNotEncryptable',
        `${name} cannot be encrypted: the service and readers need it in clear`,
      );
    }
    const v = getProperty(entity.properties, name);
    if (v === undefined) {
      throw new CseError(
        'PropertyNotEncryptable',
        `property ${name} is to be encrypted but the entity has no such property`,
      );
    }
    if (v.type !== 'String') {
      throw new CseError(
        'PropertyNotEncryptable',
        `property ${name} is Edm.${v.type}; only String properties can be encrypted (the stored form is binary and ` +
          'legacy readers turn every decrypted value into a string)',
      );
    }
    out.add(name);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Decryption

export interface DecryptEntityOptions {
  /** Resolves (and vets) the key id stored in the entity. */
  readonly resolver: KeyResolver;
  /** Read legacy 1.0 (CBC, unauthenticated) entities. Without it they fail with 'LegacyFormatDisabled'. */
  readonly allowV1: boolean;
  /** Return an entity without encryption metadata as it is. Without it such an entity fails with 'NotEncrypted'. */
  readonly allowPlaintext?: boolean;
  /**
   * The property names the entity was read with ($select), if any. Encrypted properties outside the selection
   * may be absent; without a selection every listed encrypted property must be present.
   */
  readonly selected?: readonly string[];
}

/** What a decrypted entity was protected with. */
export interface EntityEncryptionInfo {
  readonly protocol: TableProtocol;
  readonly keyId: string;
  /** Names listed in `_ClientEncryptionMetadata2`, in stored order. */
  readonly encryptedProperties: readonly string[];
  /** A legacy Java 1.0 entity (PK + RK IV order, `[a, b]` name list). */
  readonly legacyJavaLayout: boolean;
}

export interface DecryptedEntity extends EntityRecord {
  /** undefined for an entity that carried no encryption metadata (only with allowPlaintext). */
  readonly encryption: EntityEncryptionInfo | undefined;
}

/**
 * Decrypts a stored entity: the listed properties become Strings again and both metadata properties are
 * removed. Nothing is returned unless every listed property present (and required) authenticates (2.0) or
 * decrypts with valid padding and UTF-8 (1.0). Throws CseError: NotEncrypted, LegacyFormatDisabled,
 * InvalidEncryptionData, UnsupportedProtocol, IntegrityCheckFailed, and what the resolver throws (KeyNotAllowed,
 * KeyNotFound, KeyUnavailable).
 */
export async function decryptEntity(stored: EntityRecord, options: DecryptEntityOptions): Promise<DecryptedEntity> {
  const where = describe(stored);
  const m1 = getProperty(stored.properties, KEY_METADATA_PROPERTY);
  const m2 = getProperty(stored.properties, NAME_LIST_PROPERTY);
  if (m1 === undefined && m2 === undefined) {
    if (options.allowPlaintext === true) return { ...stored, encryption: undefined };
    throw new CseError('NotEncrypted', `${where} carries no encryption metadata (it was not written encrypted)`);
  }
  if (m1 === undefined || m2 === undefined) {
    const [has, lacks] =
      m1 === undefined ? [NAME_LIST_PROPERTY, KEY_METADATA_PROPERTY] : [KEY_METADATA_PROPERTY, NAME_LIST_PROPERTY];
    throw new CseError('InvalidEncryptionData', `${where} has ${has} but not ${lacks}`);
  }
  if (m1.type !== 'String') {
    throw new CseError(
      'InvalidEncryptionData',
      `${where}: ${KEY_METADATA_PROPERTY} must be a String, not Edm.${m1.type}`,
    );
  }
  const metadata = parseTableKeyMetadata(m1.value);
  if (metadata.protocol === '1.0' && !options.allowV1) {
    throw new CseError(
      'LegacyFormatDisabled',
      `${where} uses the legacy table encryption protocol 1.0 (AES-CBC, unauthenticated); reading it must be enabled (CSE_ALLOW_V1)`,
    );
  }
  const javaLayout = usesLegacyJavaLayout(metadata);
  const cek = await unwrapEntityKey(metadata, options.resolver);
  try {
    const open = (name: string, v: TableValue): string => {
      const what = `${where}, property ${name}`;
      const bytes = storedBytes(v, what);
      const at: PropertyLocation = { partitionKey: stored.partitionKey, rowKey: stored.rowKey, name };
      const plain =
        metadata.protocol === '1.0'
          ? v1Decrypt(cek, v1PropertyIv(metadata.entityIv, at, javaLayout), bytes, what)
          : v2Decrypt(cek, at, bytes, what);
      return decodeUtf8(plain, what);
    };

    const listText = open(NAME_LIST_PROPERTY, m2);
    const listed = parseNameList(
      listText,
      javaLayout,
      metadata.protocol === '1.0' ? 'IntegrityCheckFailed' : 'InvalidEncryptionData',
    );
    for (const name of listed) {
      if (isSystemPropertyName(name) || isReservedPropertyName(name)) {
        throw new CseError('InvalidEncryptionData', `${where}: the encrypted property list names ${name}`);
      }
    }
    const listedSet = new Set(listed);
    const selected = options.selected === undefined ? undefined : new Set(options.selected);
    for (const name of listed) {
      const required = selected === undefined || selected.has(name);
      if (required && getProperty(stored.properties, name) === undefined) {
        throw new CseError(
          'IntegrityCheckFailed',
          `${where}: encrypted property ${name} is listed in the entity's metadata but missing (it was removed)`,
        );
      }
    }

    const out: [string, TableValue][] = [];
    for (const [name, v] of propertyEntries(stored.properties)) {
      if (isReservedPropertyName(name)) continue;
      out.push([name, listedSet.has(name) ? { type: 'String', value: open(name, v) } : v]);
    }
    return {
      partitionKey: stored.partitionKey,
      rowKey: stored.rowKey,
      properties: properties(out),
      encryption: {
        protocol: metadata.protocol,
        keyId: metadata.wrappedContentKey.keyId,
        encryptedProperties: listed,
        legacyJavaLayout: javaLayout,
      },
    };
  } finally {
    cek.fill(0);
  }
}

/**
 * The stored bytes of an encrypted value: Edm.Binary, or (JSON without type annotations, FORMAT.md §6.6) a
 * String holding base64.
 */
function storedBytes(v: TableValue, what: string): Buffer {
  if (v.type === 'Binary') return v.value;
  if (v.type === 'String') {
    const bytes = decodeBase64Strict(v.value);
    if (bytes !== undefined) return bytes;
  }
  throw new CseError(
    'IntegrityCheckFailed',
    `${what} is listed as encrypted but holds an Edm.${v.type} value, not ciphertext (it was replaced)`,
  );
}

function describe(e: EntityRecord): string {
  return `entity (PartitionKey ${JSON.stringify(e.partitionKey)}, RowKey ${JSON.stringify(e.rowKey)})`;
}
