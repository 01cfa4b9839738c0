/**
 * The public vocabulary of key rotation: what `GET /api/rotations/{id}` returns, and what re-wrapping one object
 * can come to.
 */

/** `failed`: the rotation could not run (its target key became unusable, or no part of its scope could be listed). */
export type RotationStatus = 'running' | 'completed' | 'completedWithFailures' | 'failed';

export const ROTATION_STATUSES: readonly RotationStatus[] = ['running', 'completed', 'completedWithFailures', 'failed'];

/**
 * Exact counts. Every object the sweep found carrying encryption data is `scanned` and ends in exactly one of
 * `alreadyCurrent`, `rewrapped`, `reencrypted`, `gone` or `failed`; `legacyV1` counts the `rewrapped` ones in the
 * v1.0 blob / 1.0 table format (a subset, not an outcome). `reencrypted` counts v1.0 blobs rewritten as v2.0
 * under the target key (only in rotations started with `reencryptV1`; see v1Reencryption.ts).
 */
export interface RotationCounts {
  readonly scanned: number;
  readonly rewrapped: number;
  readonly alreadyCurrent: number;
  readonly legacyV1: number;
  readonly reencrypted: number;
  readonly gone: number;
  readonly failed: number;
}

export const ZERO_COUNTS: RotationCounts = {
  scanned: 0,
  rewrapped: 0,
  alreadyCurrent: 0,
  legacyV1: 0,
  reencrypted: 0,
  gone: 0,
  failed: 0,
};

/** The containers and tables a rotation covers, resolved to names when it starts. */
export interface RotationScope {
  readonly containers: readonly string[];
  readonly tables: readonly string[];
}

/**
 * `object` names what failed: `blob:{container}/{name}`, `entity:{table}(PartitionKey='..',RowKey='..')`, or a
 * whole scope unit (`container:{name}`, `table:{name}`) whose listing failed. `reason` starts with an error code.
 */
export interface RotationFailure {
  readonly object: string;
  readonly reason: string;
}

/** The JSON body of `GET /api/rotations/{id}`. Times are ISO 8601 (UTC); `finishedAt` is null while running. */
export interface RotationView {
  readonly id: string;
  readonly targetKeyId: string;
  readonly status: RotationStatus;
  readonly scope: RotationScope;
  /** Started with `reencryptV1`: v1.0 blobs are re-encrypted to v2.0 instead of re-wrapped. */
  readonly reencryptV1: boolean;
  readonly counts: RotationCounts;
  /**
   * Snapshots and previous blob versions found under a key other than the target, per key id: they cannot be
   * re-wrapped (their metadata is immutable), so those key versions must stay enabled while they exist.
   */
  readonly snapshotsUnderOldKeys: Readonly<Record<string, number>>;
  readonly failures: readonly RotationFailure[];
  readonly startedAt: string;
  readonly finishedAt: string | null;
}

/**
 * What re-wrapping one object came to, when its work item ran. An object that was under another key when the
 * sweep listed it and is under the target key when its work item runs counts as `rewrapped`, whoever wrote it
 * (this delivery, an earlier delivery of the same work item that was cut short, or a concurrent write under the
 * target key): that keeps the counts identical however often a work item is delivered.
 */
export type ObjectOutcome =
  | { readonly kind: 'rewrapped'; readonly legacyV1: boolean }
  | { readonly kind: 'reencrypted' }
  | { readonly kind: 'gone' }
  | { readonly kind: 'failed'; readonly reason: string };

export function blobObjectName(container: string, name: string): string {
  return `blob:${container}/${name}`;
}

export function entityObjectName(table: string, partitionKey: string, rowKey: string): string {
  const q = (s: string): string => `'${s.replace(/'/g, "''")}'`;
  return `entity:${table}(PartitionKey=${q(partitionKey)},RowKey=${q(rowKey)})`;
}
