/**
 * User metadata of encrypted blobs: validation, the reserved `encryptiondata` entry and the service's 8 KiB limit.
 *
 * Azure rules: names follow C# identifier rules and are case-insensitive (and Node lower-cases response header
 * names, so names are normalized to lower case here); values travel as HTTP header values. The total size of all
 * names and values, `encryptiondata` included, may not exceed 8 KiB. Azurite does not enforce that limit, so it
 * is checked here, before anything is uploaded.
 */
import { CseError } from '../errors';
import { ENCRYPTION_DATA_METADATA_KEY } from '../crypto/encryptionData';

/** The service's limit on all metadata names and values together (bytes). */
export const METADATA_SIZE_LIMIT = 8 * 1024;

/** Metadata as stored: lower-case names, string values. */
export type BlobMetadata = Readonly<Record<string, string>>;

/** ASCII subset of C# identifiers (metadata names travel as header names). */
const METADATA_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Visible ASCII and inner spaces/tabs: header values are trimmed by HTTP, and non-ASCII is refused by Azure. */
const METADATA_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;

export function isReservedMetadataName(name: string): boolean {
  return name.toLowerCase() === ENCRYPTION_DATA_METADATA_KEY;
}

/**
 * Validates caller-supplied metadata and returns it with lower-case names. Throws `ReservedMetadata` for
 * `encryptiondata` (in any case), `InvalidMetadata` for a bad name or value, or names that differ only in case.
 */
export function normalizeUserMetadata(entries: Iterable<readonly [string, unknown]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, value] of entries) {
    if (isReservedMetadataName(rawName)) {
      throw new CseError(
        'ReservedMetadata',
        `Metadata name "${ENCRYPTION_DATA_METADATA_KEY}" is reserved for the encryption data and cannot be set.`,
      );
    }
    if (!METADATA_NAME.test(rawName)) {
      throw new CseError(
        'InvalidMetadata',
        `Invalid metadata name "${rawName.slice(0, 100)}": use letters, digits and underscores, not starting with a digit.`,
      );
    }
    if (typeof value !== 'string') {
      throw new CseError('InvalidMetadata', `Metadata "${rawName}" must be a string value.`);
    }
    if (!METADATA_VALUE.test(value)) {
      throw new CseError(
        'InvalidMetadata',
        `Invalid value for metadata "${rawName}": use printable ASCII without leading or trailing whitespace (percent-encode other text).`,
      );
    }
    const name = rawName.toLowerCase();
    if (Object.hasOwn(out, name)) {
      throw new CseError('InvalidMetadata', `Metadata name "${rawName}" is given twice (names are case-insensitive).`);
    }
    out[name] = value;
  }
  return out;
}

/** Bytes counted against the 8 KiB limit: every name and value, as UTF-8. */
export function metadataSize(metadata: BlobMetadata): number {
  let size = 0;
  for (const [name, value] of Object.entries(metadata)) {
    size += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
  }
  return size;
}

export function assertMetadataFits(metadata: BlobMetadata): void {
  const size = metadataSize(metadata);
  if (size > METADATA_SIZE_LIMIT) {
    throw new CseError(
      'MetadataTooLarge',
      `Metadata takes ${size} bytes including the encryption data; Azure Storage allows ${METADATA_SIZE_LIMIT}.`,
    );
  }
}

/** The stored `encryptiondata` value (looked up case-insensitively: listings keep the case the writer used). */
export function encryptionDataOf(stored: BlobMetadata | undefined): string | undefined {
  if (stored === undefined) return undefined;
  for (const [name, value] of Object.entries(stored)) {
    if (isReservedMetadataName(name)) return value;
  }
  return undefined;
}

/** Stored metadata without `encryptiondata`, names lower-cased: what callers see as their metadata. */
export function userMetadataOf(stored: BlobMetadata | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(stored ?? {})) {
    if (!isReservedMetadataName(name)) out[name.toLowerCase()] = value;
  }
  return out;
}
