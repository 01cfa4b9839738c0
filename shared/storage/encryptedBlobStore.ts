/**
 * Encrypted block blobs on Azure Storage: the library behind the HTTP blob functions (and reusable by ingestion,
 * rotation and the CLI). Nothing here knows about HTTP; conditional-request semantics and Range parsing are the
 * caller's, this module answers with data and typed CseErrors.
 *
 * - upload: plaintext stream -> v2.0 encryption -> blocks staged with bounded concurrency -> one commitBlockList
 *   carrying the metadata (with `encryptiondata`) and the content headers. Nothing becomes visible unless the
 *   whole source was read; memory is about (concurrency + 1) blocks plus one region.
 * - open + read: properties first (encryption data, length, ETag), then ONE ranged GET of the stored bytes that
 *   cover the requested plaintext range, locked to the ETag, streamed through decryption. Offsets sent to storage
 *   are always computed here (never a client's Range header: Azurite mishandles suffix ranges and ranges that
 *   start at the end of a blob).
 * - openWhole: the whole blob in one GET whose headers stand in for the properties (one round trip, not two).
 */
import type {
  BlobGetPropertiesResponse,
  BlobItem,
  BlobServiceClient,
  BlockBlobClient,
  ContainerClient,
} from '@azure/storage-blob';
import { CseError } from '../errors';
import type { KeyEncryptionKey, KeyResolver } from '../keys/kek';
import { parseEncryptionData, type ContentProtocol } from '../crypto/encryptionData';
import { startBlobEncryption } from '../crypto/blobEncryption';
import { openBlobDecryption, type BlobDecryptor } from '../crypto/blobDecryption';
import { v2PlainLength, REGION_LENGTH, NONCE_LENGTH, TAG_LENGTH } from '../crypto/regionMath';
import { stageBlocks } from './blockUpload';
import type { ContainerPolicy } from './containerPolicy';
import { assertMetadataFits, encryptionDataOf, userMetadataOf, type BlobMetadata } from './metadata';
import { validateBlobName } from './names';
import { isConditionFailure, isStorageNotFound, storageErrorCode, storageStatus, toCseError } from './storageErrors';
import { ENCRYPTION_DATA_METADATA_KEY } from '../crypto/encryptionData';
import { mapBounded } from '../mapBounded';

/** The content headers stored as blob properties and served back on GET. */
export interface ContentHeaders {
  readonly contentType?: string | undefined;
  readonly cacheControl?: string | undefined;
  readonly contentDisposition?: string | undefined;
  readonly contentEncoding?: string | undefined;
  readonly contentLanguage?: string | undefined;
}

/** What the store needs from the key ring: the key new content is wrapped with, and a resolver for stored ids. */
export interface BlobKeys {
  readonly resolver: KeyResolver;
  activeKey(): Promise<KeyEncryptionKey>;
}

export interface EncryptedBlobStoreOptions {
  readonly containers: ContainerPolicy;
  /** `CSE_ALLOW_V1`: read legacy v1.0 (AES-CBC) blobs. */
  readonly allowV1: boolean;
  /** `CSE_ALLOW_PLAINTEXT_READS`: serve blobs that carry no encryption data as they are. */
  readonly allowPlaintextReads: boolean;
  /** Stored bytes per staged block (default: two v2 regions, 8 MiB + 56). */
  readonly blockSize?: number;
  /** stageBlock calls in flight per upload (default 4). */
  readonly uploadConcurrency?: number;
  /** Largest region (`DataLength`) accepted when reading v2.1 (memory bound; default the decryptor's). */
  readonly maxRegionLength?: number;
}

/** Conditions on a write, passed to Azure Storage as they are (single ETag or `*`). */
export interface WriteConditions {
  readonly ifMatch?: string | undefined;
  readonly ifNoneMatch?: string | undefined;
}

export interface UploadOptions {
  /** User metadata, already validated by `normalizeUserMetadata` (lower-case names). */
  readonly metadata?: BlobMetadata;
  readonly contentHeaders?: ContentHeaders;
  readonly conditions?: WriteConditions;
  /** The plaintext length announced by the sender (Content-Length): a shorter or longer body is not committed. */
  readonly expectedLength?: number | undefined;
  readonly abortSignal?: AbortSignal;
}

export interface UploadResult {
  readonly container: string;
  readonly name: string;
  readonly etag: string;
  readonly lastModified: Date;
  /** Plaintext bytes. */
  readonly contentLength: number;
  readonly keyId: string;
  readonly protocol: '2.0';
}

/** How the stored bytes of an opened blob become plaintext. */
export type OpenedContent =
  | {
      readonly kind: 'encrypted';
      readonly protocol: ContentProtocol;
      readonly keyId: string;
      readonly decryptor: BlobDecryptor;
    }
  | { readonly kind: 'plaintext' };

/** A blob ready to be read: its properties at one ETag, and the means to decrypt it. */
export interface OpenedBlob {
  readonly container: string;
  readonly name: string;
  readonly etag: string;
  readonly lastModified: Date;
  /** Plaintext bytes. */
  readonly contentLength: number;
  /** Bytes stored (ciphertext for encrypted blobs). */
  readonly storedLength: number;
  readonly contentHeaders: ContentHeaders;
  /** User metadata (lower-case names, `encryptiondata` removed). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly content: OpenedContent;
}

/** What Get Blob Properties and a whole-blob GET both answer with (the fields open() needs). */
type StoredBlobHeaders = Pick<
  BlobGetPropertiesResponse,
  | 'etag'
  | 'contentLength'
  | 'lastModified'
  | 'contentType'
  | 'cacheControl'
  | 'contentDisposition'
  | 'contentEncoding'
  | 'contentLanguage'
  | 'metadata'
>;

/** A whole-blob read under way: the blob as opened, and its plaintext (see EncryptedBlobStore.openWhole). */
export interface WholeRead {
  readonly blob: OpenedBlob;
  /** Authenticated plaintext of the whole blob, as read() yields it. */
  readonly content: AsyncGenerator<Buffer>;
  /** Releases the storage response; for when `content` will not be read to its end. */
  discard(): void;
}

/** A plaintext byte range, both ends inclusive, inside the blob. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface ReadOptions {
  readonly abortSignal?: AbortSignal;
  /** Called with the number of stored bytes each storage GET returned (for diagnostics and benchmarks). */
  readonly onStoredBytes?: (count: number) => void;
}

export interface ListOptions {
  readonly prefix?: string | undefined;
  readonly continuationToken?: string | undefined;
  /** Page size (1..5000; default 5000, the service maximum). */
  readonly maxResults?: number | undefined;
}

export interface ListedBlob {
  readonly name: string;
  /** Plaintext bytes; null when it cannot be known (unreadable encryption data, v1 without the opt-in). */
  readonly contentLength: number | null;
  readonly lastModified: string;
  readonly etag: string;
  /** Null for blobs without (valid) encryption data. */
  readonly keyId: string | null;
  readonly protocol: ContentProtocol | null;
}

export interface ListPage {
  readonly blobs: ListedBlob[];
  /** Pass back to get the next page; null after the last page. */
  readonly continuationToken: string | null;
}

/**
 * Two stored regions per block (8 MiB + 56): like the Storage SDK's own 8 MiB upload buffers, fewer and larger
 * stageBlock calls measured faster than one-region blocks; memory stays (concurrency + 1) × 8 MiB.
 */
const DEFAULT_BLOCK_SIZE = 2 * (REGION_LENGTH + NONCE_LENGTH + TAG_LENGTH);
const DEFAULT_UPLOAD_CONCURRENCY = 4;
/** Read-modify-write attempts of replaceMetadata when others change the blob meanwhile (with jittered backoff). */
const METADATA_ATTEMPTS = 10;
/** v1 listings decrypt one block per blob: bound the parallel key unwraps and reads. */
const LIST_V1_CONCURRENCY = 4;

export class EncryptedBlobStore {
  readonly #service: BlobServiceClient;
  readonly #keys: BlobKeys;
  readonly #options: EncryptedBlobStoreOptions;
  readonly #knownContainers = new Set<string>();

  constructor(service: BlobServiceClient, keys: BlobKeys, options: EncryptedBlobStoreOptions) {
    this.#service = service;
    this.#keys = keys;
    this.#options = options;
  }

  get serviceClient(): BlobServiceClient {
    return this.#service;
  }

  /** Throws InvalidName / ContainerNotAllowed; returns the container client. */
  container(container: string): ContainerClient {
    this.#options.containers.assertAllowed(container);
    return this.#service.getContainerClient(container);
  }

  #blob(container: string, name: string): BlockBlobClient {
    const client = this.container(container);
    validateBlobName(name);
    return client.getBlockBlobClient(name);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Upload

  /** Encrypts `plaintext` (v2.0, active key) into `container/name`; creates the container if missing. */
  async upload(
    container: string,
    name: string,
    plaintext: AsyncIterable<Uint8Array>,
    options: UploadOptions = {},
  ): Promise<UploadResult> {
    const blob = this.#blob(container, name);
    const conditions = options.conditions ?? {};
    const userMetadata = options.metadata ?? {};
    if (Object.keys(userMetadata).some((k) => k.toLowerCase() === ENCRYPTION_DATA_METADATA_KEY)) {
      throw new CseError('ReservedMetadata', `Metadata name "${ENCRYPTION_DATA_METADATA_KEY}" is reserved.`);
    }
    // Fail fast on conditions before reading a byte of the body; the commit re-checks them atomically.
    await this.#checkWriteConditions(blob, container, name, conditions);

    const kek = await this.#keys.activeKey();
    const session = await startBlobEncryption(kek);
    const metadata = { ...userMetadata, [ENCRYPTION_DATA_METADATA_KEY]: session.metadataValue };
    assertMetadataFits(metadata);
    await this.#ensureContainer(container);

    let plaintextLength = 0;
    const counted = countBytes(plaintext, (n) => (plaintextLength += n));
    try {
      const staged = await stageBlocks(blob, session.encrypt(counted), {
        blockSize: this.#options.blockSize ?? DEFAULT_BLOCK_SIZE,
        concurrency: this.#options.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY,
        ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
      });
      if (options.expectedLength !== undefined && plaintextLength !== options.expectedLength) {
        // A body that ended early without a transport error must never become a (truncated) blob.
        throw new CseError(
          'InvalidRequest',
          `The body had ${plaintextLength} bytes but Content-Length announced ${options.expectedLength}; nothing was stored.`,
        );
      }
      const committed = await blob.commitBlockList(staged.blockIds, {
        metadata,
        blobHTTPHeaders: {
          blobContentType: options.contentHeaders?.contentType,
          blobCacheControl: options.contentHeaders?.cacheControl,
          blobContentDisposition: options.contentHeaders?.contentDisposition,
          blobContentEncoding: options.contentHeaders?.contentEncoding,
          blobContentLanguage: options.contentHeaders?.contentLanguage,
        },
        conditions: { ifMatch: conditions.ifMatch, ifNoneMatch: conditions.ifNoneMatch },
        ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
      });
      return {
        container,
        name,
        etag: required(committed.etag, 'ETag'),
        lastModified: required(committed.lastModified, 'Last-Modified'),
        contentLength: plaintextLength,
        keyId: session.keyId,
        protocol: session.protocol,
      };
    } catch (e) {
      if (conditions.ifMatch !== undefined && isStorageNotFound(e) && storageErrorCode(e) === 'BlobNotFound') {
        throw new CseError('ConditionNotMet', `Blob "${name}" no longer exists (If-Match).`, { cause: e });
      }
      if (storageErrorCode(e) === 'ContainerNotFound') this.#knownContainers.delete(container);
      throw toCseError(e, container, name);
    }
  }

  async #checkWriteConditions(
    blob: BlockBlobClient,
    container: string,
    name: string,
    conditions: WriteConditions,
  ): Promise<void> {
    if (conditions.ifMatch === undefined && conditions.ifNoneMatch === undefined) return;
    let etag: string | undefined;
    try {
      etag = (await blob.getProperties()).etag;
    } catch (e) {
      if (!isStorageNotFound(e)) throw toCseError(e, container, name);
    }
    if (conditions.ifMatch !== undefined && (etag === undefined || !matches(conditions.ifMatch, etag))) {
      throw new CseError('ConditionNotMet', `Blob "${name}" does not match If-Match.`);
    }
    if (conditions.ifNoneMatch !== undefined && etag !== undefined && matches(conditions.ifNoneMatch, etag)) {
      if (conditions.ifNoneMatch.trim() === '*') {
        throw new CseError('BlobExists', `Blob "${name}" in container "${container}" already exists.`);
      }
      throw new CseError('ConditionNotMet', `Blob "${name}" matches If-None-Match.`);
    }
  }

  async #ensureContainer(container: string): Promise<void> {
    if (this.#knownContainers.has(container)) return;
    await this.#service.getContainerClient(container).createIfNotExists();
    this.#knownContainers.add(container);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Read

  /**
   * Reads the properties of `container/name` and prepares decryption: unwraps the content key (KeyNotAllowed,
   * KeyUnavailable, IntegrityCheckFailed), and for v1 decrypts the last block to learn the plaintext length.
   * Throws BlobNotFound, NotEncrypted (no encryption data and plaintext reads off), LegacyFormatDisabled.
   */
  async open(container: string, name: string): Promise<OpenedBlob> {
    const client = this.#blob(container, name);
    let props;
    try {
      props = await client.getProperties();
    } catch (e) {
      throw toCseError(e, container, name);
    }
    return this.#describe(client, container, name, props);
  }

  /**
   * The whole blob in ONE storage request: a GET without a range answers with the content and with everything
   * open() reads from the properties, so a full download costs one round trip instead of two. For callers with
   * no condition to evaluate first (the content is already on its way when this returns); `discard()` releases
   * the storage response if the content will not be read. Same errors as open(), and read()'s guarantees.
   */
  async openWhole(container: string, name: string, options: ReadOptions = {}): Promise<WholeRead> {
    const client = this.#blob(container, name);
    let response;
    try {
      response = await client.download(0, undefined, {
        maxRetryRequests: 5, // a retry resumes at the byte it stopped at, locked to this response's ETag
        ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
      });
    } catch (e) {
      throw toCseError(e, container, name);
    }
    const body = response.readableStreamBody;
    if (body === undefined) throw new Error('Storage returned no body for a blob download');
    const discard = (): void => void body.destroy();
    let blob: OpenedBlob;
    try {
      blob = await this.#describe(client, container, name, response);
    } catch (e) {
      discard();
      throw e;
    }
    const stored = checkedBody(body, blob.storedLength, options);
    const content =
      blob.content.kind === 'plaintext'
        ? stored
        : blob.content.decryptor.decryptRange(stored, blob.content.decryptor.planWhole(blob.storedLength));
    return { blob, content, discard };
  }

  /** An opened blob from what Storage said of it (Get Blob Properties, or a whole-blob GET's headers). */
  async #describe(
    client: BlockBlobClient,
    container: string,
    name: string,
    props: StoredBlobHeaders,
  ): Promise<OpenedBlob> {
    const etag = required(props.etag, 'ETag');
    const storedLength = required(props.contentLength, 'Content-Length');
    const common = {
      container,
      name,
      etag,
      lastModified: required(props.lastModified, 'Last-Modified'),
      storedLength,
      contentHeaders: {
        contentType: props.contentType,
        cacheControl: props.cacheControl,
        contentDisposition: props.contentDisposition,
        contentEncoding: props.contentEncoding,
        contentLanguage: props.contentLanguage,
      },
      metadata: userMetadataOf(props.metadata),
    };
    const encryptionData = encryptionDataOf(props.metadata);
    if (encryptionData === undefined) {
      if (!this.#options.allowPlaintextReads) {
        throw new CseError(
          'NotEncrypted',
          `Blob "${name}" carries no encryption data (set CSE_ALLOW_PLAINTEXT_READS to serve such blobs).`,
        );
      }
      return { ...common, contentLength: storedLength, content: { kind: 'plaintext' } };
    }
    const decryptor = await openBlobDecryption(encryptionData, this.#keys.resolver, {
      allowV1: this.#options.allowV1,
      ...(this.#options.maxRegionLength !== undefined ? { maxRegionLength: this.#options.maxRegionLength } : {}),
    });
    const readCipher = async (offset: number, count: number): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      for await (const chunk of this.#download(client, container, name, etag, offset, count)) chunks.push(chunk);
      return Buffer.concat(chunks);
    };
    const contentLength = await decryptor.plaintextLength(storedLength, readCipher);
    return {
      ...common,
      contentLength,
      content: { kind: 'encrypted', protocol: decryptor.protocol, keyId: decryptor.keyId, decryptor },
    };
  }

  /**
   * Streams the plaintext of `range` (default: all) of an opened blob: one ranged GET of exactly the stored bytes
   * that cover it, locked to the opened ETag. Yields only authenticated plaintext; throws IntegrityCheckFailed on
   * a region that fails, ConditionNotMet if the blob changed since `open`.
   */
  async *read(blob: OpenedBlob, range?: ByteRange, options: ReadOptions = {}): AsyncGenerator<Buffer> {
    const wanted = range ?? { start: 0, end: blob.contentLength - 1 };
    if (wanted.end < wanted.start) return; // empty blob, or an empty selection: no storage call at all
    if (wanted.start < 0 || wanted.end >= blob.contentLength) {
      throw new CseError(
        'RangeNotSatisfiable',
        `Range ${wanted.start}-${wanted.end} is outside 0-${blob.contentLength - 1}.`,
      );
    }
    const client = this.#blob(blob.container, blob.name);
    const content = blob.content;
    if (content.kind === 'plaintext') {
      yield* this.#download(
        client,
        blob.container,
        blob.name,
        blob.etag,
        wanted.start,
        wanted.end - wanted.start + 1,
        options,
      );
      return;
    }
    const plan = content.decryptor.planRange(wanted, blob.storedLength);
    if (plan.cipherCount <= 0) return;
    const cipher = this.#download(
      client,
      blob.container,
      blob.name,
      blob.etag,
      plan.cipherOffset,
      plan.cipherCount,
      options,
    );
    yield* content.decryptor.decryptRange(cipher, plan);
  }

  async *#download(
    client: BlockBlobClient,
    container: string,
    name: string,
    etag: string,
    offset: number,
    count: number,
    options: ReadOptions = {},
  ): AsyncGenerator<Buffer> {
    let response;
    try {
      response = await client.download(offset, count, {
        conditions: { ifMatch: etag },
        maxRetryRequests: 5,
        ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
      });
    } catch (e) {
      if (isConditionFailure(e)) {
        throw new CseError('ConditionNotMet', `Blob "${name}" changed while it was being read.`, { cause: e });
      }
      throw toCseError(e, container, name);
    }
    const body = response.readableStreamBody;
    if (body === undefined) throw new Error('Storage returned no body for a blob download');
    yield* checkedBody(body, count, options);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Delete, list, metadata

  /** Deletes the blob (and its snapshots). Throws BlobNotFound, ConditionNotMet. */
  async delete(container: string, name: string, conditions: Pick<WriteConditions, 'ifMatch'> = {}): Promise<void> {
    const blob = this.#blob(container, name);
    try {
      await blob.delete({ deleteSnapshots: 'include', conditions: { ifMatch: conditions.ifMatch } });
    } catch (e) {
      throw toCseError(e, container, name);
    }
  }

  /** One page of the container's blobs with plaintext lengths. A container that does not exist is empty. */
  async list(container: string, options: ListOptions = {}): Promise<ListPage> {
    const client = this.container(container);
    const maxPageSize = options.maxResults ?? 5000;
    if (!Number.isSafeInteger(maxPageSize) || maxPageSize < 1 || maxPageSize > 5000) {
      throw new CseError('InvalidRequest', 'maxResults must be an integer from 1 to 5000.');
    }
    let page;
    try {
      const pages = client.listBlobsFlat({ prefix: options.prefix, includeMetadata: true }).byPage({
        maxPageSize,
        ...(options.continuationToken ? { continuationToken: options.continuationToken } : {}),
      });
      page = (await pages.next()).value;
    } catch (e) {
      if (storageErrorCode(e) === 'ContainerNotFound') return { blobs: [], continuationToken: null };
      if (storageStatus(e) === 400 && options.continuationToken) {
        throw new CseError('InvalidRequest', 'The continuationToken is not one this listing returned.', { cause: e });
      }
      throw toCseError(e, container);
    }
    if (page === undefined) return { blobs: [], continuationToken: null };
    const items: BlobItem[] = page.segment.blobItems;
    const blobs = await mapBounded(items, LIST_V1_CONCURRENCY, (item) =>
      this.#describeListed(container, item.name, item.properties, item.metadata),
    );
    return { blobs, continuationToken: page.continuationToken ? page.continuationToken : null };
  }

  async #describeListed(
    container: string,
    name: string,
    properties: { contentLength?: number; lastModified: Date; etag: string },
    metadata: Record<string, string> | undefined,
  ): Promise<ListedBlob> {
    const storedLength = properties.contentLength ?? 0;
    // Listings carry the ETag unquoted; quote it like every other ETag the API returns (usable in If-Match).
    const etag = properties.etag.startsWith('"') ? properties.etag : `"${properties.etag}"`;
    const base = { name, lastModified: properties.lastModified.toISOString(), etag };
    const encryptionData = encryptionDataOf(metadata);
    if (encryptionData === undefined) {
      return { ...base, contentLength: storedLength, keyId: null, protocol: null };
    }
    let parsed;
    try {
      parsed = parseEncryptionData(encryptionData);
    } catch {
      return { ...base, contentLength: null, keyId: null, protocol: null };
    }
    const keyId = parsed.wrappedContentKey.keyId;
    if (parsed.protocol !== '1.0') {
      let contentLength: number | null;
      try {
        contentLength = v2PlainLength(storedLength, parsed.encryptedRegionInfo.dataLength);
      } catch {
        contentLength = null;
      }
      return { ...base, contentLength, keyId, protocol: parsed.protocol };
    }
    // v1: the padding hides the length; only the last block tells it (needs the key, and the opt-in).
    let contentLength: number | null = null;
    if (this.#options.allowV1) {
      try {
        contentLength = (await this.open(container, name)).contentLength;
      } catch {
        contentLength = null;
      }
    }
    return { ...base, contentLength, keyId, protocol: '1.0' };
  }

  /**
   * Replaces the user metadata and keeps `encryptiondata` (Set Blob Metadata replaces everything, so a plain call
   * would destroy the wrapped key). Read-modify-write under If-Match; when the caller gave no If-Match, a
   * concurrent change is retried. Throws BlobNotFound, ConditionNotMet, MetadataTooLarge.
   */
  async replaceMetadata(
    container: string,
    name: string,
    metadata: BlobMetadata,
    conditions: Pick<WriteConditions, 'ifMatch'> = {},
  ): Promise<{ etag: string; lastModified: Date }> {
    const blob = this.#blob(container, name);
    if (Object.keys(metadata).some((k) => k.toLowerCase() === ENCRYPTION_DATA_METADATA_KEY)) {
      throw new CseError('ReservedMetadata', `Metadata name "${ENCRYPTION_DATA_METADATA_KEY}" is reserved.`);
    }
    for (let attempt = 0; attempt < METADATA_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(Math.random() * 20 * attempt); // jitter: concurrent writers do not collide again
      let props;
      try {
        props = await blob.getProperties();
      } catch (e) {
        throw toCseError(e, container, name);
      }
      const etag = required(props.etag, 'ETag');
      if (conditions.ifMatch !== undefined && !matches(conditions.ifMatch, etag)) {
        throw new CseError('ConditionNotMet', `Blob "${name}" does not match If-Match.`);
      }
      const encryptionData = encryptionDataOf(props.metadata);
      const full =
        encryptionData === undefined
          ? { ...metadata }
          : { ...metadata, [ENCRYPTION_DATA_METADATA_KEY]: encryptionData };
      assertMetadataFits(full);
      try {
        const result = await blob.setMetadata(full, { conditions: { ifMatch: etag } });
        return { etag: required(result.etag, 'ETag'), lastModified: required(result.lastModified, 'Last-Modified') };
      } catch (e) {
        if (!isConditionFailure(e) || conditions.ifMatch !== undefined) throw toCseError(e, container, name);
        // Changed between our read and write (e.g. a key rotation re-wrapped it): read again.
      }
    }
    throw new CseError('ConditionNotMet', `Blob "${name}" kept changing; metadata not replaced.`);
  }
}

/** `*` or exact (strong) equality: Azure ETags are strong; a weak tag never matches If-Match. */
function matches(condition: string, etag: string): boolean {
  const c = condition.trim();
  return c === '*' || c === etag;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`Storage response without ${what}`);
  return value;
}

/** A download's body, counted: exactly `count` bytes, or IntegrityCheckFailed. */
async function* checkedBody(body: NodeJS.ReadableStream, count: number, options: ReadOptions): AsyncGenerator<Buffer> {
  let received = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      options.onStoredBytes?.(chunk.length);
      yield chunk;
    }
  } catch (e) {
    // The SDK resumes a broken download locked to its ETag; a 412 there means the blob was replaced meanwhile.
    if (isConditionFailure(e))
      throw new CseError('ConditionNotMet', 'The blob changed while it was being read.', { cause: e });
    throw e;
  }
  if (received !== count) {
    // Azurite answers some impossible ranges with 206 and fewer bytes; never treat a short read as content.
    throw new CseError('IntegrityCheckFailed', `Storage returned ${received} of ${count} requested bytes.`);
  }
}

async function* countBytes(
  source: AsyncIterable<Uint8Array>,
  onBytes: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    onBytes(chunk.byteLength);
    yield chunk;
  }
}
