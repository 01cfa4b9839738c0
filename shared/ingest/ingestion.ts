/**
 * The ingestion procedure: encrypt a plaintext blob (or an inline payload) into a target blob at rest, then
 * remove the plaintext, without losing anything on the way whatever fails or crashes in between.
 *
 * For a blob source:
 *   1. Names are checked (Azure naming rules, CSE_CONTAINERS; the host's own containers are never touched) and
 *      the source must not be its own target.
 *   2. The source's properties are read (ETag E, length, content headers, metadata). If the source does not
 *      exist, the message is done when the target records that source (an earlier delivery finished the job),
 *      and is a BlobNotFound failure otherwise (the source never existed: poison after the host's retries).
 *   3. If the target already records the source at ETag E, an earlier delivery committed it and crashed before
 *      the delete: nothing is written again, only step 5 runs.
 *   4. Otherwise the source is read in ONE streamed GET locked to E (If-Match; a change while reading fails the
 *      read and nothing is committed) and written to the target through staged blocks and one commit that sets
 *      the content headers, the source's user metadata and the source record (shared/ingest/sourceRecord.ts):
 *      - plaintext source: v2.0 encryption with the active key (a fresh content key);
 *      - source with `encryptiondata`: its bytes and encryption data are copied unchanged (no double encryption).
 *   5. If deleteSource, the source is deleted with If-Match E: only the version that was read, and only after the
 *      target is committed. A source changed since it was read is not deleted and the attempt fails
 *      (ConditionNotMet), so the host retries and the next attempt ingests the new version.
 *
 * Memory is a few regions whatever the size: about (concurrency + 1) blocks of one region each plus the
 * download's stream buffers. Storage calls are retried by the Storage SDK's retry policy (and the download
 * stream resumes where it broke, still locked to E); what is still failing after that fails the attempt, and the
 * queue redelivers it.
 *
 * Nothing here logs: the caller logs the outcome (or the failure) with describeOutcome.
 */
import { createHash } from 'node:crypto';
import type { BlobGetPropertiesResponse, BlobServiceClient, BlockBlobClient } from '@azure/storage-blob';
import { CseError } from '../errors';
import type { KeyEncryptionKey } from '../keys/kek';
import { startBlobEncryption } from '../crypto/blobEncryption';
import { chunksOf } from '../crypto/byteChunks';
import { ENCRYPTION_DATA_METADATA_KEY, parseEncryptionData, type ContentProtocol } from '../crypto/encryptionData';
import { v2PlainLength } from '../crypto/regionMath';
import type { ContainerPolicy } from '../storage/containerPolicy';
import type { ContentHeaders } from '../storage/encryptedBlobStore';
import { assertMetadataFits, encryptionDataOf } from '../storage/metadata';
import { validateBlobName } from '../storage/names';
import { isConditionFailure, isStorageNotFound, storageErrorCode, toCseError } from '../storage/storageErrors';
import type { CrashPoint, StepHook } from './crashPoints';
import {
  describeBlob,
  type BlobIngestRequest,
  type BlobRef,
  type IngestRequest,
  type InlineIngestRequest,
  type MessageForm,
} from './ingestRequest';
import { readRecord, recordMetadata, recordsSource, recordsSourceVersion, withoutRecord } from './sourceRecord';
import { writeTarget } from './targetWriter';

export interface IngestionServices {
  /** The account of AzureWebJobsStorage (sources and targets live there). */
  readonly blobService: BlobServiceClient;
  /** CSE_CONTAINERS: both the source and the target container must be allowed. */
  readonly containers: ContainerPolicy;
  /** The key new content keys are wrapped with (the key ring's active key). */
  activeKey(): Promise<KeyEncryptionKey>;
}

export interface IngestionOptions {
  /** Stored bytes per staged block (default one v2 region, 4 MiB + 28). */
  readonly blockSize?: number;
  /** stageBlock calls in flight per ingestion (default 4). */
  readonly uploadConcurrency?: number;
  /**
   * Ingestions running at once in this process (default 4); more wait their turn. The Functions host runs up to
   * batchSize + newBatchThreshold messages at once (24 with host.json's defaults), and each ingestion holds a
   * few regions, so this is what keeps the process's memory bounded too, not only each ingestion's.
   */
  readonly maxConcurrentIngestions?: number;
  /** Called at each crash point (tests; see crashPoints.ts). */
  readonly onStep?: StepHook | undefined;
  /** Clock for durations (tests). */
  readonly now?: () => number;
}

export type IngestAction =
  /** Plaintext encrypted (v2.0) into the target. */
  | 'encrypted'
  /** An already-encrypted source copied into the target unchanged. */
  | 'copied'
  /** Nothing left to do: an earlier delivery of this message finished (the target records the source). */
  | 'alreadyIngested';

export interface IngestOutcome {
  readonly action: IngestAction;
  readonly form: MessageForm;
  readonly envelope: boolean;
  /** The source blob and the ETag that was ingested; null for inline content. */
  readonly source: (BlobRef & { readonly etag: string }) | null;
  readonly target: BlobRef & { readonly etag: string };
  /**
   * Content bytes: the plaintext length, except for a copied v1.0 source (whose plaintext length is hidden by
   * its padding), where it is the stored length.
   */
  readonly size: number;
  /** The key id that wraps the target's content key. */
  readonly keyId: string;
  readonly protocol: ContentProtocol;
  /** This attempt deleted the source. */
  readonly sourceDeleted: boolean;
  /** The target was committed by an earlier attempt (which stopped before deleting the source). */
  readonly resumed: boolean;
  readonly durationMs: number;
}

/** Properties of a blob that matter here. */
interface BlobState {
  readonly etag: string;
  readonly contentLength: number;
  readonly contentHeaders: ContentHeaders;
  readonly metadata: Readonly<Record<string, string>>;
}

export class Ingestion {
  readonly #services: IngestionServices;
  readonly #options: IngestionOptions;
  readonly #now: () => number;
  readonly #knownContainers = new Set<string>();
  readonly #slots: Slots;

  constructor(services: IngestionServices, options: IngestionOptions = {}) {
    this.#services = services;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#slots = new Slots(options.maxConcurrentIngestions ?? DEFAULT_MAX_CONCURRENT_INGESTIONS);
  }

  /**
   * Runs one request to completion, or throws (CseError for every answer; raw errors for faults). The duration
   * counts from when it got its turn (see maxConcurrentIngestions).
   */
  async ingest(request: IngestRequest): Promise<IngestOutcome> {
    const release = await this.#slots.acquire();
    try {
      const started = this.#now();
      const result = request.kind === 'blob' ? await this.#ingestBlob(request) : await this.#ingestInline(request);
      return {
        ...result,
        form: request.form,
        envelope: request.envelope,
        durationMs: Math.round(this.#now() - started),
      };
    } finally {
      release();
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Blob sources

  async #ingestBlob(request: BlobIngestRequest): Promise<Omit<IngestOutcome, 'form' | 'envelope' | 'durationMs'>> {
    const { source, target } = request;
    this.#checkBlob(source, 'source');
    this.#checkBlob(target, 'target');
    if (source.container === target.container && source.name === target.name) {
      throw new CseError(
        'InvalidMessage',
        `the target ${describeBlob(target)} is the source itself; ingestion writes to another blob and deletes the source`,
      );
    }
    const sourceClient = this.#client(source);
    const targetClient = this.#client(target);

    const sourceState = await getState(sourceClient, source);
    const targetState = await getState(targetClient, target);
    if (sourceState === undefined) return this.#finishedEarlier(request, targetState);

    const storedEncryptionData = encryptionDataOf(sourceState.metadata);
    let written: { etag: string; size: number; keyId: string; protocol: ContentProtocol };
    let resumed = false;
    if (targetState !== undefined && recordsSourceVersion(readRecord(targetState.metadata), source, sourceState.etag)) {
      // Committed by an earlier attempt that stopped before the delete: do not write (or encrypt) it again.
      resumed = true;
      written = { etag: targetState.etag, ...describeStored(targetState) };
    } else {
      try {
        written =
          storedEncryptionData !== undefined
            ? await this.#copyEncrypted(sourceClient, source, sourceState, storedEncryptionData, targetClient, target)
            : await this.#encrypt(sourceClient, source, sourceState, targetClient, target);
      } catch (e) {
        if (storageErrorCode(e) !== 'InvalidBlockList') throw e;
        // Another delivery of this message committed the target while this one was staging (a commit discards
        // every other uncommitted block of the blob). Fine if that target is this very source version.
        const committed = await getState(targetClient, target);
        if (
          committed === undefined ||
          !recordsSourceVersion(readRecord(committed.metadata), source, sourceState.etag)
        ) {
          throw new CseError(
            'ConditionNotMet',
            `the target ${describeBlob(target)} was written by someone else while this ingestion staged it`,
            { cause: e },
          );
        }
        resumed = true;
        written = { etag: committed.etag, ...describeStored(committed) };
      }
    }

    let sourceDeleted = false;
    if (request.deleteSource) {
      sourceDeleted = await deleteSourceVersion(sourceClient, source, sourceState.etag);
      await this.#step('after-delete');
    }
    return {
      action: storedEncryptionData !== undefined ? 'copied' : 'encrypted',
      source: { ...source, etag: sourceState.etag },
      target: { ...target, etag: written.etag },
      size: written.size,
      keyId: written.keyId,
      protocol: written.protocol,
      sourceDeleted,
      resumed,
    };
  }

  /** The source is gone: done if the target records it (an earlier delivery finished), else BlobNotFound. */
  #finishedEarlier(
    request: BlobIngestRequest,
    targetState: BlobState | undefined,
  ): Omit<IngestOutcome, 'form' | 'envelope' | 'durationMs'> {
    const { source, target } = request;
    const record = targetState === undefined ? undefined : readRecord(targetState.metadata);
    if (targetState === undefined || record?.kind !== 'blob' || !recordsSource(record, source)) {
      throw new CseError(
        'BlobNotFound',
        `the source blob ${describeBlob(source)} does not exist, and the target ${describeBlob(target)} ` +
          (targetState === undefined ? 'does not exist either' : 'does not record it as its source'),
      );
    }
    return {
      action: 'alreadyIngested',
      source: { ...source, etag: record.etag },
      target: { ...target, etag: targetState.etag },
      ...describeStored(targetState),
      sourceDeleted: false,
      resumed: true,
    };
  }

  async #encrypt(
    sourceClient: BlockBlobClient,
    source: BlobRef,
    sourceState: BlobState,
    targetClient: BlockBlobClient,
    target: BlobRef,
  ): Promise<{ etag: string; size: number; keyId: string; protocol: ContentProtocol }> {
    const kek = await this.#services.activeKey();
    const session = await startBlobEncryption(kek);
    const metadata = {
      ...withoutRecord(sourceState.metadata),
      [ENCRYPTION_DATA_METADATA_KEY]: session.metadataValue,
      ...recordMetadata({ kind: 'blob', source, etag: sourceState.etag }),
    };
    assertMetadataFits(metadata);
    await this.#ensureContainer(target.container);
    const plaintext = readSource(sourceClient, source, sourceState);
    const committed = await this.#write(targetClient, target, session.encrypt(plaintext), {
      metadata,
      contentHeaders: sourceState.contentHeaders,
    });
    return { etag: committed.etag, size: sourceState.contentLength, keyId: session.keyId, protocol: session.protocol };
  }

  async #copyEncrypted(
    sourceClient: BlockBlobClient,
    source: BlobRef,
    sourceState: BlobState,
    encryptionData: string,
    targetClient: BlockBlobClient,
    target: BlobRef,
  ): Promise<{ etag: string; size: number; keyId: string; protocol: ContentProtocol }> {
    // Copied unchanged, but only if it is encryption data a reader can use: garbage must not be passed off as
    // an encrypted target while the source is deleted.
    const parsed = parseEncryptionData(encryptionData);
    const metadata = {
      ...withoutRecord(sourceState.metadata),
      [ENCRYPTION_DATA_METADATA_KEY]: encryptionData,
      ...recordMetadata({ kind: 'blob', source, etag: sourceState.etag }),
    };
    assertMetadataFits(metadata);
    await this.#ensureContainer(target.container);
    const committed = await this.#write(targetClient, target, readSource(sourceClient, source, sourceState), {
      metadata,
      contentHeaders: sourceState.contentHeaders,
    });
    return {
      etag: committed.etag,
      ...describeStored({ ...sourceState, metadata: { [ENCRYPTION_DATA_METADATA_KEY]: encryptionData } }),
      keyId: parsed.wrappedContentKey.keyId,
      protocol: parsed.protocol,
    };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Inline content

  async #ingestInline(request: InlineIngestRequest): Promise<Omit<IngestOutcome, 'form' | 'envelope' | 'durationMs'>> {
    const { target, content } = request;
    this.#checkBlob(target, 'target');
    const targetClient = this.#client(target);
    const sha256 = createHash('sha256').update(content).digest('hex');
    const targetState = await getState(targetClient, target);
    const existing = targetState === undefined ? undefined : readRecord(targetState.metadata);
    if (targetState !== undefined && existing?.kind === 'inline' && existing.sha256 === sha256) {
      // The same payload was stored by an earlier delivery: keep that target (same bytes, same ETag).
      return {
        action: 'alreadyIngested',
        source: null,
        target: { ...target, etag: targetState.etag },
        ...describeStored(targetState),
        sourceDeleted: false,
        resumed: true,
      };
    }
    const kek = await this.#services.activeKey();
    const session = await startBlobEncryption(kek);
    const metadata = {
      ...withoutRecord(request.metadata),
      [ENCRYPTION_DATA_METADATA_KEY]: session.metadataValue,
      ...recordMetadata({ kind: 'inline', sha256 }),
    };
    assertMetadataFits(metadata);
    await this.#ensureContainer(target.container);
    const committed = await this.#write(targetClient, target, session.encrypt(chunksOf(content)), {
      metadata,
      contentHeaders: { contentType: request.contentType },
    });
    return {
      action: 'encrypted',
      source: null,
      target: { ...target, etag: committed.etag },
      size: content.length,
      keyId: session.keyId,
      protocol: session.protocol,
      sourceDeleted: false,
      resumed: false,
    };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Helpers

  async #write(
    client: BlockBlobClient,
    target: BlobRef,
    stored: AsyncIterable<Uint8Array>,
    options: { metadata: Record<string, string>; contentHeaders: ContentHeaders },
  ): Promise<{ etag: string }> {
    try {
      const committed = await writeTarget(client, stored, {
        ...options,
        blockSize: this.#options.blockSize,
        concurrency: this.#options.uploadConcurrency,
        beforeCommit: () => this.#step('after-stage'),
      });
      await this.#step('after-commit');
      return committed;
    } catch (e) {
      // Source errors arrive as CseErrors naming the source (readSource); the rest concern the target.
      throw toCseError(e, target.container, target.name);
    }
  }

  async #step(point: CrashPoint): Promise<void> {
    await this.#options.onStep?.(point);
  }

  #checkBlob(ref: BlobRef, what: 'source' | 'target'): void {
    try {
      this.#services.containers.assertAllowed(ref.container);
      validateBlobName(ref.name);
    } catch (e) {
      if (e instanceof CseError) throw new CseError(e.code, `${what}: ${e.message}`, { cause: e });
      throw e;
    }
  }

  #client(ref: BlobRef): BlockBlobClient {
    return this.#services.blobService.getContainerClient(ref.container).getBlockBlobClient(ref.name);
  }

  async #ensureContainer(container: string): Promise<void> {
    if (this.#knownContainers.has(container)) return;
    try {
      await this.#services.blobService.getContainerClient(container).createIfNotExists();
    } catch (e) {
      throw toCseError(e, container);
    }
    this.#knownContainers.add(container);
  }
}

export const DEFAULT_MAX_CONCURRENT_INGESTIONS = 4;

/** A counting semaphore: at most `limit` holders; the others wait in arrival order. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`invalid concurrency limit ${limit}`);
    this.#free = limit;
  }

  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next !== undefined)
        next(); // the slot passes straight to the next in line
      else this.#free++;
    };
  }
}

/** Properties of `ref`, or undefined when it does not exist. */
async function getState(client: BlockBlobClient, ref: BlobRef): Promise<BlobState | undefined> {
  let props: BlobGetPropertiesResponse;
  try {
    props = await client.getProperties();
  } catch (e) {
    if (isStorageNotFound(e)) return undefined;
    throw toCseError(e, ref.container, ref.name);
  }
  if (props.etag === undefined || props.contentLength === undefined) {
    throw new Error(`Storage returned properties of ${describeBlob(ref)} without ETag or Content-Length`);
  }
  return {
    etag: props.etag,
    contentLength: props.contentLength,
    contentHeaders: {
      contentType: props.contentType,
      cacheControl: props.cacheControl,
      contentDisposition: props.contentDisposition,
      contentEncoding: props.contentEncoding,
      contentLanguage: props.contentLanguage,
    },
    metadata: props.metadata ?? {},
  };
}

/**
 * The source's bytes as ONE GET locked to the ETag that was read (the SDK resumes a broken stream with the same
 * If-Match). A body shorter or longer than the length that was read fails rather than becoming a target.
 * Errors name the source: ConditionNotMet when it changed (or vanished) while being read.
 */
async function* readSource(client: BlockBlobClient, source: BlobRef, state: BlobState): AsyncGenerator<Buffer> {
  if (state.contentLength === 0) return; // no GET at all: Azurite mis-answers ranges of empty blobs
  let received = 0;
  try {
    const response = await client.download(0, undefined, { conditions: { ifMatch: state.etag }, maxRetryRequests: 5 });
    const body = response.readableStreamBody;
    if (body === undefined) throw new Error('Storage returned no body for a blob download');
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      yield chunk;
    }
  } catch (e) {
    if (isConditionFailure(e) || isStorageNotFound(e)) {
      throw new CseError(
        'ConditionNotMet',
        `the source ${describeBlob(source)} changed or was deleted while it was being read; nothing was committed`,
        { cause: e },
      );
    }
    throw toCseError(e, source.container, source.name);
  }
  if (received !== state.contentLength) {
    throw new CseError(
      'ConditionNotMet',
      `the source ${describeBlob(source)} returned ${received} of ${state.contentLength} bytes; nothing was committed`,
    );
  }
}

/** Deletes exactly the version that was read. True if this call deleted it, false if it was already gone. */
async function deleteSourceVersion(client: BlockBlobClient, source: BlobRef, etag: string): Promise<boolean> {
  try {
    await client.delete({ deleteSnapshots: 'include', conditions: { ifMatch: etag } });
    return true;
  } catch (e) {
    // Gone already: another delivery of this message deleted it after committing the same target. (A missing
    // blob may also answer If-Match with 412, as Azurite does, so a 412 is checked before it counts as a change.)
    if (isStorageNotFound(e)) return false;
    if (isConditionFailure(e)) {
      if (!(await client.exists())) return false;
      throw new CseError(
        'ConditionNotMet',
        `the source ${describeBlob(source)} changed after it was read (ETag ${etag}); it was not deleted, and the ` +
          'next attempt ingests the new version',
        { cause: e },
      );
    }
    throw toCseError(e, source.container, source.name);
  }
}

/** Size, key id and protocol of a stored encrypted blob, from its encryption data and stored length. */
function describeStored(state: Pick<BlobState, 'contentLength' | 'metadata'>): {
  size: number;
  keyId: string;
  protocol: ContentProtocol;
} {
  const value = encryptionDataOf(state.metadata);
  if (value === undefined) {
    throw new CseError('NotEncrypted', 'the target records its source but carries no encryption data');
  }
  const data = parseEncryptionData(value);
  const size =
    data.protocol === '1.0'
      ? state.contentLength
      : v2PlainLength(state.contentLength, data.encryptedRegionInfo.dataLength);
  return { size, keyId: data.wrappedContentKey.keyId, protocol: data.protocol };
}
