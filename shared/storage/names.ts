/**
 * Azure Storage naming rules for containers and blobs, checked before any storage call so that a bad name is a
 * clear 400 (`InvalidName`) instead of a confusing service error, and so that no name can make the Storage SDK
 * address a different resource than the one named.
 *
 * Rules (Azure docs "Naming and Referencing Containers, Blobs, and Metadata"):
 * - container: 3–63 characters, lower-case letters, digits and hyphens, starting with a letter or digit, every
 *   hyphen between letters or digits. The special `$root`, `$logs` and `$web` containers are not served.
 * - blob: 1–1024 characters, at most 254 path segments, not ending in `.` or `/`.
 * On top of the service rules this module refuses what would change meaning on the way to the service:
 * - `.` and `..` path segments: the SDK builds the request URL with the WHATWG URL parser, which resolves dot
 *   segments, so `../other/x` would address another container (bypassing the container allow-list);
 * - control characters and unpaired UTF-16 surrogates (not representable in a URL or a listing).
 */
import { CseError } from '../errors';

const CONTAINER_NAME = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const MAX_BLOB_NAME_LENGTH = 1024;
export const MAX_BLOB_NAME_SEGMENTS = 254;

export function validateContainerName(name: string): void {
  if (!CONTAINER_NAME.test(name)) {
    throw new CseError(
      'InvalidName',
      `Invalid container name "${printable(name)}": use 3-63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit.`,
    );
  }
}

export function validateBlobName(name: string): void {
  const problem = blobNameProblem(name);
  if (problem !== undefined) {
    throw new CseError('InvalidName', `Invalid blob name "${printable(name)}": ${problem}.`);
  }
}

function blobNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name.length > MAX_BLOB_NAME_LENGTH) return `the name is longer than ${MAX_BLOB_NAME_LENGTH} characters`;
  if (name.endsWith('.') || name.endsWith('/')) return 'a blob name cannot end with "." or "/"';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'the name contains a control character';
  if (LONE_SURROGATE.test(name)) return 'the name contains an unpaired surrogate (not valid Unicode)';
  const segments = name.split('/');
  if (segments.length > MAX_BLOB_NAME_SEGMENTS) return `the name has more than ${MAX_BLOB_NAME_SEGMENTS} path segments`;
  if (segments.some((s) => s === '.' || s === '..')) return 'the name contains a "." or ".." path segment';
  return undefined;
}

/** Names are echoed in error messages; keep those messages single-line and bounded. */
function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > 100 ? `${clean.slice(0, 100)}...` : clean;
}
