/**
 * Re-wraps one table entity's content key in place: read only `_ClientEncryptionMetadata1` and the ETag,
 * re-wrap (tables/tableKeyMetadata.ts keeps the protocol, the entity IV and KeyWrappingMetadata), and write it
 * back by a Merge that carries only that property, with `If-Match`; on 412 read again and retry (the legacy .NET
 * `TableOperation.RotateEncryptionKey` does the same, FORMAT.md §7.2). The encrypted properties and
 * `_ClientEncryptionMetadata2` are never read or written: the content key does not change, so they stay valid.
 * The reads and writes are EncryptedTableClient's key-metadata operations, which touch nothing else.
 */
import { isCseError } from '../errors';
import type { EncryptedTableClient } from '../tables/encryptedTableClient';
import { rewrapTableKeyMetadata } from '../tables/tableKeyMetadata';
import { DEFAULT_MAX_ATTEMPTS, backoffMs, type RewrapContext } from './blobRewrap';
import { failureReason, isTransient, reason } from './faults';
import type { ObjectOutcome } from './types';

/** One entity of a work item. */
export interface EntityWorkEntry {
  readonly partitionKey: string;
  readonly rowKey: string;
}

const GONE: ObjectOutcome = { kind: 'gone' };

/** Throws only transient errors; every other problem is an outcome. */
export async function rewrapEntity(
  table: EncryptedTableClient,
  entry: EntityWorkEntry,
  context: RewrapContext,
): Promise<ObjectOutcome> {
  const maxAttempts = context.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const { partitionKey, rowKey } = entry;
  try {
    for (let attempt = 1; ; attempt++) {
      const stored = await table.readEntityKeyMetadata(partitionKey, rowKey);
      const legacyV1 = stored.metadata.protocol === '1.0';
      if (stored.metadata.wrappedContentKey.keyId === context.target.keyId) return { kind: 'rewrapped', legacyV1 };
      const updated = await rewrapTableKeyMetadata(stored.metadata, context.resolver, context.target);
      try {
        await table.writeEntityKeyMetadata(partitionKey, rowKey, updated, stored.etag);
        return { kind: 'rewrapped', legacyV1 };
      } catch (e) {
        if (!isCseError(e, 'ConditionNotMet')) throw e;
        if (attempt >= maxAttempts) {
          return {
            kind: 'failed',
            reason: reason('ConditionNotMet', `the entity changed during each of ${maxAttempts} attempts`),
          };
        }
      }
      await (context.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(backoffMs(attempt));
    }
  } catch (e) {
    // The entity, or its whole table, was deleted after the sweep.
    if (isCseError(e, 'EntityNotFound')) return GONE;
    if (isTransient(e)) throw e;
    return { kind: 'failed', reason: failureReason(e) };
  }
}
