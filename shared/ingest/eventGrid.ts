/**
 * Azure Event Grid `Microsoft.Storage.BlobCreated` events, as an Event Grid subscription with a storage queue
 * destination delivers them (one event per message, base64 JSON; infra/modules/system-topic-to-queue.bicep).
 * Both delivery schemas are read: the Event Grid schema (`eventType`, `subject`, `data`) and CloudEvents 1.0
 * (`specversion`, `type`, `subject`, `data`).
 *
 * The blob comes from `subject`, `/blobServices/default/containers/<container>/blobs/<name>`, where the name is
 * not percent-encoded (it is the blob name as is, `/` included). Event Grid has been seen replacing characters
 * outside the BMP with U+FFFD there, so when the subject's name holds U+FFFD the name is taken from `data.url`
 * instead, whose path is percent-encoded UTF-8 and therefore exact.
 */
import { CseError } from '../errors';
import type { BlobRef } from './ingestRequest';

export const BLOB_CREATED = 'Microsoft.Storage.BlobCreated';

const SUBJECT = /^\/blobServices\/default\/containers\/([^/]+)\/blobs\/(.+)$/s;

/** True when `value` looks like an Event Grid or CloudEvents event (so it is parsed as one, or rejected as one). */
export function isEventLike(value: Record<string, unknown>): boolean {
  return 'eventType' in value || 'specversion' in value;
}

export interface BlobCreatedEvent {
  readonly blob: BlobRef;
  /** `data.eTag`: the blob's ETag when the event fired (informational: the blob may have changed since). */
  readonly eTag: string | undefined;
}

/** Reads the source blob of a BlobCreated event. Throws CseError 'InvalidMessage' for anything else. */
export function parseBlobCreatedEvent(event: Record<string, unknown>): BlobCreatedEvent {
  const type = 'specversion' in event ? event.type : event.eventType;
  if (type !== BLOB_CREATED) {
    throw new CseError(
      'InvalidMessage',
      `the Event Grid event has type ${JSON.stringify(type)}; only ${BLOB_CREATED} events can be ingested`,
    );
  }
  const subject = event.subject;
  if (typeof subject !== 'string') throw new CseError('InvalidMessage', 'the BlobCreated event has no subject');
  const match = SUBJECT.exec(subject);
  if (match === null) {
    throw new CseError(
      'InvalidMessage',
      `the BlobCreated event's subject ${JSON.stringify(subject.slice(0, 200))} does not name a blob ` +
        '(expected /blobServices/default/containers/<container>/blobs/<name>)',
    );
  }
  const container = match[1] as string;
  let name = match[2] as string;
  const data = isObject(event.data) ? event.data : undefined;
  if (name.includes('\uFFFD') && typeof data?.url === 'string') {
    name = nameFromUrl(data.url, container) ?? name;
  }
  const eTag = typeof data?.eTag === 'string' ? data.eTag : undefined;
  return { blob: { container, name }, eTag };
}

/** The blob name from a blob URL whose path ends with `/<container>/<percent-encoded name>`. */
function nameFromUrl(url: string, container: string): string | undefined {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return undefined;
  }
  const marker = `/${container}/`;
  const at = path.indexOf(marker);
  if (at < 0) return undefined;
  try {
    return decodeURIComponent(path.slice(at + marker.length));
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
