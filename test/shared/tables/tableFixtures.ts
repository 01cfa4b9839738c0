/**
 * Table test fixtures: the Python azure-cosmosdb-table vectors (test/fixtures/vectors/table, described in the
 * manifest) and Microsoft's legacy .NET / Java cross-SDK entities (microsoft-cross-sdk.json, FORMAT.md §6.7).
 */
import { readFileSync } from 'node:fs';
import { createLocalKey } from '../../../shared/keys/localKeys';
import type { KeyEncryptionKey, KeyResolver } from '../../../shared/keys/kek';
import { CseError } from '../../../shared/errors';
import { entityFromWire, type WireEntity } from '../../../shared/tables/wireEntity';
import { properties, type EntityRecord, type TableValue } from '../../../shared/tables/entityModel';
import { loadManifest, vectorPath } from '../../helpers/vectors';

export interface TableVector {
  id: string;
  protocol: '1.0';
  kid: string;
  partition_key: string;
  row_key: string;
  plaintext_properties: Record<string, string | number>;
  encrypted_properties: string[];
  metadata2_plaintext: string;
  request_body_file: string;
  stored_entity_file: string;
  cek_hex: string;
  entity_iv_hex: string;
  property_ivs_hex: Record<string, string>;
}

export function tableVectors(): TableVector[] {
  return loadManifest()['table'] as TableVector[];
}

/** The entity as the service returned it (stored.json). */
export function storedEntity(v: TableVector): WireEntity {
  return entityFromWire(JSON.parse(readFileSync(vectorPath(v.stored_entity_file), 'utf8')));
}

/** The exact JSON body the SDK sent. */
export function requestBody(v: TableVector): Record<string, unknown> {
  return JSON.parse(readFileSync(vectorPath(v.request_body_file), 'utf8')) as Record<string, unknown>;
}

/** The plaintext entity in the order the SDK saw it (the request body's order; a Python int went as Int64). */
export function plaintextEntity(v: TableVector): EntityRecord {
  const body = requestBody(v);
  const names = Object.keys(body).filter(
    (k) => !k.includes('@') && k !== 'PartitionKey' && k !== 'RowKey' && !k.startsWith('_ClientEncryption'),
  );
  const entries = names.map((name): [string, TableValue] => {
    const value = v.plaintext_properties[name];
    if (typeof value === 'number') return [name, { type: 'Int64', value: String(value) }];
    if (typeof value !== 'string') throw new Error(`vector ${v.id}: no plaintext for ${name}`);
    return [name, { type: 'String', value }];
  });
  return { partitionKey: v.partition_key, rowKey: v.row_key, properties: properties(entries) };
}

// ---------------------------------------------------------------------------------------------------------------

export interface MicrosoftEntity {
  writer: string;
  PartitionKey: string;
  RowKey: string;
  binary: Record<string, string>;
  _ClientEncryptionMetadata1: string;
  name_list_plaintext: string;
}

export interface MicrosoftVectors {
  kek: { kid: string; alg: 'A256KW'; k_base64: string };
  plaintext: string;
  entities: MicrosoftEntity[];
}

export function microsoftVectors(): MicrosoftVectors {
  return JSON.parse(readFileSync(vectorPath('table', 'microsoft-cross-sdk.json'), 'utf8')) as MicrosoftVectors;
}

export function microsoftKek(): KeyEncryptionKey {
  const { kek } = microsoftVectors();
  return createLocalKey({
    kid: kek.kid,
    kty: 'oct',
    alg: 'A256KW',
    k: Buffer.from(kek.k_base64, 'base64').toString('base64url'),
  });
}

export function microsoftStoredEntity(e: MicrosoftEntity): EntityRecord {
  const entries: [string, TableValue][] = Object.entries(e.binary).map(([n, b64]) => [
    n,
    { type: 'Binary', value: Buffer.from(b64, 'base64') },
  ]);
  entries.push(['_ClientEncryptionMetadata1', { type: 'String', value: e._ClientEncryptionMetadata1 }]);
  return { partitionKey: e.PartitionKey, rowKey: e.RowKey, properties: properties(entries) };
}

/** A resolver over fixed keys that records every id it is asked for. */
export function recordingResolver(...keys: KeyEncryptionKey[]): KeyResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async resolve(keyId: string) {
      asked.push(keyId);
      const kek = keys.find((k) => k.keyId === keyId);
      if (kek === undefined) throw new CseError('KeyNotFound', `no key ${keyId}`);
      return kek;
    },
  };
}
