/**
 * Strict base64 decoding. Node's `Buffer.from(s, 'base64')` silently skips invalid characters and accepts
 * missing padding, so a damaged `EncryptedKey` or `k` would decode to *some* bytes and fail much later with a
 * misleading error. These helpers reject anything that is not canonical text in the named alphabet.
 */

// No nested quantifiers: a grouped `(?:x{4})*` pattern overflows V8's regexp stack on inputs of a few MiB.
const STANDARD_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE_NO_PAD = /^[A-Za-z0-9_-]*$/;

/** Standard alphabet with `=` padding (what the SDKs write in encryption data). Returns undefined if invalid. */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !STANDARD_CHARS.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

/** base64url without padding (RFC 7515 §2, what JWKs use). Returns undefined if invalid. */
export function decodeBase64UrlStrict(text: string): Buffer | undefined {
  if (!URL_SAFE_NO_PAD.test(text) || text.length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64url');
}
