/**
 * The `--metadata FILE` of `cse decrypt`: either the blob's metadata as a JSON object with an `encryptiondata`
 * string member (what `cse encrypt --metadata-out` and `az storage blob metadata show` produce), or the raw
 * encryption-data JSON itself. Returns the encryption-data JSON text, unparsed (the decryptor parses it).
 */
import { CseError } from '../shared/errors';
import { ENCRYPTION_DATA_METADATA_KEY } from '../shared/crypto/encryptionData';
import { decodeUtf8, readSmallFile } from './inputFiles';

/** Far above Azure's 8 KiB metadata limit; only guards against pointing --metadata at a large file. */
const MAX_METADATA_FILE_BYTES = 1024 * 1024;

export async function readEncryptionDataFile(path: string): Promise<string> {
  const bytes = await readSmallFile(path, MAX_METADATA_FILE_BYTES, 'the metadata file', 'InvalidMetadata');
  return encryptionDataFromMetadataText(decodeUtf8(bytes, `the metadata file ${path}`, 'InvalidMetadata'), path);
}

export function encryptionDataFromMetadataText(text: string, path: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CseError('InvalidMetadata', `the metadata file ${path} is not valid JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new CseError('InvalidMetadata', `the metadata file ${path} must hold a JSON object`);
  }
  const members = doc as Record<string, unknown>;
  // Metadata names are case-insensitive in Azure Storage; tools differ in the case they print.
  const names = Object.keys(members).filter((n) => n.toLowerCase() === ENCRYPTION_DATA_METADATA_KEY);
  if (names.length > 1) {
    throw new CseError('InvalidMetadata', `the metadata file ${path} has more than one encryptiondata member`);
  }
  const name = names[0];
  if (name !== undefined) {
    const value = members[name];
    if (typeof value !== 'string') {
      throw new CseError(
        'InvalidMetadata',
        `the ${name} member of ${path} must be a string holding the encryption-data JSON`,
      );
    }
    return value;
  }
  if ('WrappedContentKey' in members || 'EncryptionAgent' in members) return text; // the raw document
  throw new CseError(
    'NotEncrypted',
    `the metadata file ${path} has no encryptiondata member and is not an encryption-data document`,
  );
}
