/**
 * What one ingestion message asks for, once parsed (shared/ingest/ingestMessage.ts) and whatever form it came
 * in: either "encrypt this existing blob into that target" or "encrypt these inline bytes into that target".
 */
import type { BlobMetadata } from '../storage/metadata';

export interface BlobRef {
  readonly container: string;
  readonly name: string;
}

/** Which message form a request came from (for logs and the completion notice). */
export type MessageForm = 'source' | 'inline' | 'eventGrid';

interface RequestCommon {
  readonly target: BlobRef;
  readonly form: MessageForm;
  /** The message arrived inside an encrypted queue envelope (EncryptedMessageContents/EncryptionData). */
  readonly envelope: boolean;
}

/** Encrypt the blob `source` into `target`, then (by default) delete the source. */
export interface BlobIngestRequest extends RequestCommon {
  readonly kind: 'blob';
  readonly source: BlobRef;
  readonly deleteSource: boolean;
}

/** Encrypt `content` (a small payload carried in the message itself) into `target`. */
export interface InlineIngestRequest extends RequestCommon {
  readonly kind: 'inline';
  readonly content: Buffer;
  /** Content-Type stored on the target (the message's `contentType`). */
  readonly contentType: string | undefined;
  /** User metadata stored on the target (the message's `metadata`, validated, lower-case names). */
  readonly metadata: BlobMetadata;
}

export type IngestRequest = BlobIngestRequest | InlineIngestRequest;

export function describeBlob(ref: BlobRef): string {
  return `${ref.container}/${ref.name}`;
}
