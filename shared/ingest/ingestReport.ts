/**
 * What is said about an ingestion: the log line of a completion (source, target, size, key id, duration), the
 * completion notice sent to the `ingest-done` queue, and the reason logged for a failure. None of them carries
 * key material: a key id names a key, it is not the key.
 */
import { CseError } from '../errors';
import { storageErrorCode, storageStatus } from '../storage/storageErrors';
import { describeBlob } from './ingestRequest';
import type { IngestOutcome } from './ingestion';

/** The queue completion notices go to (created by infra/main.bicep; no function listens on it here). */
export const INGEST_DONE_QUEUE = 'ingest-done';

/** One line: `Ingestion completed: source=landing/a.csv target=encrypted/a.csv size=123 keyId=... durationMs=5 ...`. */
export function describeOutcome(outcome: IngestOutcome): string {
  const source = outcome.source === null ? 'inline' : describeBlob(outcome.source);
  const fields = [
    `source=${quoteIfNeeded(source)}`,
    `target=${quoteIfNeeded(describeBlob(outcome.target))}`,
    `size=${outcome.size}`,
    `keyId=${quoteIfNeeded(outcome.keyId)}`,
    `durationMs=${outcome.durationMs}`,
    `action=${outcome.action}`,
    `protocol=${outcome.protocol}`,
    `sourceDeleted=${outcome.sourceDeleted}`,
    `form=${outcome.form}${outcome.envelope ? '+envelope' : ''}`,
  ];
  if (outcome.resumed) fields.push('resumed=true');
  return `Ingestion completed: ${fields.join(' ')}`;
}

/** The completion notice (JSON), one per successful invocation: at least once, so consumers dedupe by target ETag. */
export interface CompletionNotice {
  readonly action: IngestOutcome['action'];
  readonly source: { readonly container: string; readonly name: string; readonly etag: string } | null;
  readonly target: { readonly container: string; readonly name: string; readonly etag: string };
  readonly size: number;
  readonly keyId: string;
  readonly protocol: string;
  readonly sourceDeleted: boolean;
  readonly durationMs: number;
  readonly completedAt: string;
}

export function completionNotice(outcome: IngestOutcome, completedAt = new Date()): CompletionNotice {
  return {
    action: outcome.action,
    source: outcome.source,
    target: outcome.target,
    size: outcome.size,
    keyId: outcome.keyId,
    protocol: outcome.protocol,
    sourceDeleted: outcome.sourceDeleted,
    durationMs: outcome.durationMs,
    completedAt: completedAt.toISOString(),
  };
}

/** A short, specific reason: `Code: message` for CseErrors, the service's error code for Storage errors. */
export function describeFailure(error: unknown): string {
  if (error instanceof CseError) return `${error.code}: ${error.message}`;
  if (typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'RestError') {
    const status = storageStatus(error);
    const code = storageErrorCode(error) ?? 'StorageError';
    return `${code}: Azure Storage answered ${status ?? 'nothing'} (${(error as Error).message.split('\n')[0]})`;
  }
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `Error: ${String(error)}`;
}

function quoteIfNeeded(text: string): string {
  return /[\s"]/.test(text) ? JSON.stringify(text) : text;
}
