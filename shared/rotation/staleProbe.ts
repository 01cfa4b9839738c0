/**
 * The scheduled check: is anything in scope still under a key other than the rotation target? It lists the
 * containers and tables the allow-lists allow, a page at a time (5,000 blobs with their metadata, 1,000
 * entities selecting only `_ClientEncryptionMetadata1`), and stops at the first object a rotation would move:
 *
 *   - an object whose stored key id is not the target and is allowed (a rotation could re-wrap it; one whose key
 *     id the configuration does not allow can only be reported as failed, which the last rotation did, so it is
 *     no reason to start another every day);
 *   - with `reencryptV1`, a v1.0 blob even under the target key (it still needs re-encrypting).
 *
 * Snapshots and blob versions are not listed: they cannot be rotated. Nothing but the current page is held.
 *
 * When everything is current the check costs one full listing. So it has a time budget: a check that runs out
 * of it (an account too large to list within the budget) answers `undecided`, and the caller starts a rotation
 * anyway, whose sweep fans the listing out over work items and many instances, and which completes with every
 * object counted `alreadyCurrent` if there was nothing to do (docs/SCALE.md).
 */
import type { TableClient, TableServiceClient } from '@azure/data-tables';
import type { BlobServiceClient } from '@azure/storage-blob';
import { ENCRYPTION_DATA_METADATA_KEY, parseEncryptionData } from '../crypto/encryptionData';
import { isCseError } from '../errors';
import { KEY_METADATA_PROPERTY } from '../tables/entityModel';
import { parseTableKeyMetadata } from '../tables/tableKeyMetadata';
import { ROTATIONS_TABLE } from './progressStore';
import { blobObjectName, entityObjectName } from './types';

export const DEFAULT_PROBE_BUDGET_MS = 120_000;
/** The service maximum per List Blobs page. */
const BLOB_PAGE = 5000;
/** The service maximum per Query Entities page. */
const ENTITY_PAGE = 1000;

export interface ProbeDeps {
  readonly blobService: BlobServiceClient;
  readonly tableService: TableServiceClient;
  readonly tableClient: (table: string) => TableClient;
  readonly isContainerAllowed: (name: string) => boolean;
  readonly isTableAllowed: (name: string) => boolean;
  /** Whether a stored key id is one the configuration allows (keyRing.checkAllowed does not throw). */
  readonly isKeyAllowed: (keyId: string) => boolean;
  readonly now?: () => number;
}

export interface ProbeOptions {
  /** Count v1.0 blobs under the target key as needing work (a rotation with reencryptV1 would re-encrypt them). */
  readonly reencryptV1: boolean;
  readonly budgetMs?: number;
}

export type ProbeResult =
  /** `object` (blob:… / entity:…) is under `keyId`, or is v1.0 to re-encrypt. */
  | { readonly kind: 'found'; readonly object: string; readonly keyId: string; readonly scanned: number }
  /** Every encrypted object in scope is current. */
  | { readonly kind: 'allCurrent'; readonly scanned: number }
  /** The budget ran out first. */
  | { readonly kind: 'undecided'; readonly scanned: number };

interface Stored {
  readonly keyId: string;
  readonly v1: boolean;
}

export async function probeForStaleObjects(
  deps: ProbeDeps,
  targetKeyId: string,
  options: ProbeOptions,
): Promise<ProbeResult> {
  const now = deps.now ?? Date.now;
  const deadline = now() + (options.budgetMs ?? DEFAULT_PROBE_BUDGET_MS);
  // Checked before more is looked at, so a check that finished everything is never "undecided".
  const overBudget = (): boolean => now() > deadline;
  let scanned = 0;
  const needsWork = (stored: Stored | undefined): boolean => {
    if (stored === undefined) return false;
    if (stored.keyId === targetKeyId) return stored.v1 && options.reencryptV1;
    return deps.isKeyAllowed(stored.keyId);
  };

  for await (const container of deps.blobService.listContainers()) {
    if (!deps.isContainerAllowed(container.name)) continue;
    if (overBudget()) return { kind: 'undecided', scanned };
    const pages = deps.blobService
      .getContainerClient(container.name)
      .listBlobsFlat({ includeMetadata: true })
      .byPage({ maxPageSize: BLOB_PAGE });
    for await (const page of pages) {
      if (overBudget()) return { kind: 'undecided', scanned };
      for (const blob of page.segment.blobItems) {
        const stored = blobKey(blob.metadata);
        if (stored === undefined) continue;
        scanned++;
        if (needsWork(stored)) {
          return { kind: 'found', object: blobObjectName(container.name, blob.name), keyId: stored.keyId, scanned };
        }
      }
    }
  }

  for await (const table of deps.tableService.listTables()) {
    const name = table.name ?? '';
    if (name === '' || name.toLowerCase() === ROTATIONS_TABLE || !deps.isTableAllowed(name)) continue;
    if (overBudget()) return { kind: 'undecided', scanned };
    const pages = deps
      .tableClient(name)
      .listEntities<Record<string, unknown>>({
        queryOptions: {
          // A comparison with a property an entity lacks is false, so only encrypted entities are listed.
          filter: `${KEY_METADATA_PROPERTY} ne ''`,
          select: ['PartitionKey', 'RowKey', KEY_METADATA_PROPERTY],
        },
      })
      .byPage({ maxPageSize: ENTITY_PAGE });
    for await (const page of pages) {
      if (overBudget()) return { kind: 'undecided', scanned };
      for (const entity of page) {
        const stored = entityKey(entity[KEY_METADATA_PROPERTY]);
        if (stored === undefined) continue;
        scanned++;
        if (needsWork({ ...stored, v1: false })) {
          const object = entityObjectName(name, String(entity.partitionKey), String(entity.rowKey));
          return { kind: 'found', object, keyId: stored.keyId, scanned };
        }
      }
    }
  }
  return { kind: 'allCurrent', scanned };
}

/** The key id and protocol of a blob's encryption data; undefined when it has none or it does not parse. */
function blobKey(metadata: Record<string, string> | undefined): Stored | undefined {
  const name = Object.keys(metadata ?? {}).find((n) => n.toLowerCase() === ENCRYPTION_DATA_METADATA_KEY);
  if (name === undefined) return undefined;
  return unlessMalformed(() => {
    const data = parseEncryptionData(metadata?.[name] ?? '');
    return { keyId: data.wrappedContentKey.keyId, v1: data.protocol === '1.0' };
  });
}

function entityKey(value: unknown): Stored | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  return unlessMalformed(() => ({ keyId: parseTableKeyMetadata(value).wrappedContentKey.keyId, v1: false }));
}

/** Metadata that does not parse is no reason to start a rotation (one could only report it as failed). */
function unlessMalformed(read: () => Stored): Stored | undefined {
  try {
    return read();
  } catch (e) {
    if (isCseError(e)) return undefined;
    throw e;
  }
}
