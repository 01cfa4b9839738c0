/**
 * Key ids: what `CSE_KEY_ID` holds and what every stored `WrappedContentKey.KeyId` names.
 *
 * Two kinds exist. A Key Vault (or Managed HSM) key URL, `https://<vault host>/keys/<name>[/<version>]`, and a
 * local kid (a key in the `CSE_LOCAL_KEYS` JWK Set): anything that is not URL-shaped.
 *
 * Stored ids are written by whoever can write to the storage account, so they are parsed strictly here, by a
 * whole-string pattern rather than by the WHATWG URL parser (which accepts `\`, user info, percent escapes and
 * other forms whose "host" is easy to misread). Only the canonical URL rebuilt from the parsed parts is ever
 * handed to the Key Vault client, so the host that the allow-list checks is exactly the host that gets
 * contacted.
 */

/** A parsed key id. `id` is the canonical form (lower-case host, no default port, no trailing slash). */
export type KeyId = LocalKeyId | KeyVaultKeyId;

export interface LocalKeyId {
  readonly kind: 'local';
  readonly id: string;
}

export interface KeyVaultKeyId {
  readonly kind: 'keyVault';
  /** `https`, or `http` for a loopback stand-in (tests). */
  readonly scheme: 'https' | 'http';
  /** Lower-case host with the port when it is not the scheme's default: what CSE_ALLOWED_KEY_VAULTS lists. */
  readonly host: string;
  /** `<scheme>://<host>`: what a KeyClient is created for. */
  readonly vaultUrl: string;
  readonly name: string;
  /** Undefined for a versionless id ("the current version"). */
  readonly version: string | undefined;
  /** The canonical id: `<vaultUrl>/keys/<name>[/<version>]`. */
  readonly id: string;
}

export type KeyIdParseResult =
  { readonly ok: true; readonly keyId: KeyId } | { readonly ok: false; readonly reason: string };

/** DNS host name (labels of letters, digits and inner hyphens) or dotted IPv4, with an optional port. */
const HOST_PATTERN = String.raw`[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::[0-9]{1,5})?`;
const HOST_RE = new RegExp(`^${HOST_PATTERN}$`, 'i');
/** Key Vault key names: 1-127 letters, digits and hyphens. Versions: letters and digits (32 hex in practice). */
const KEY_URL_RE = new RegExp(`^(https?)://(${HOST_PATTERN})/keys/([a-z0-9-]{1,127})(?:/([a-z0-9]{1,64}))?/?$`, 'i');
const MAX_LOCAL_KID_LENGTH = 256;

/**
 * Parses a key id without throwing (callers choose the error code: ConfigurationError for settings,
 * KeyNotAllowed for stored metadata). The reason never repeats more than the first characters of the input.
 */
export function parseKeyId(value: string): KeyIdParseResult {
  if (typeof value !== 'string' || value.length === 0) return { ok: false, reason: 'the key id is empty' };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /^https?:/i.test(value)) return parseKeyVaultKeyId(value);
  return parseLocalKid(value);
}

function parseKeyVaultKeyId(value: string): KeyIdParseResult {
  const match = KEY_URL_RE.exec(value);
  if (match === null) {
    return {
      ok: false,
      reason: `${quote(value)} is not a Key Vault key id (expected https://<vault host>/keys/<name>[/<version>])`,
    };
  }
  const [, schemeText, hostText, name, version] = match as unknown as [string, string, string, string, string?];
  const scheme = schemeText.toLowerCase() as 'https' | 'http';
  const host = normaliseHost(hostText, scheme);
  if (host === undefined) return { ok: false, reason: `${quote(value)} has an invalid port` };
  if (scheme === 'http' && !isLoopbackHost(host)) {
    return { ok: false, reason: `${quote(value)} uses http; Key Vault key ids must use https` };
  }
  const vaultUrl = `${scheme}://${host}`;
  const id = `${vaultUrl}/keys/${name}${version === undefined ? '' : `/${version}`}`;
  return { ok: true, keyId: { kind: 'keyVault', scheme, host, vaultUrl, name, version, id } };
}

function parseLocalKid(value: string): KeyIdParseResult {
  if (value.length > MAX_LOCAL_KID_LENGTH) {
    return { ok: false, reason: `a local key id is at most ${MAX_LOCAL_KID_LENGTH} characters` };
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return { ok: false, reason: 'the key id contains control characters' };
  if (value.trim() !== value) return { ok: false, reason: `${quote(value)} has leading or trailing white space` };
  return { ok: true, keyId: { kind: 'local', id: value } };
}

/**
 * Parses one entry of CSE_ALLOWED_KEY_VAULTS: a host name with an optional port (`myvault.vault.azure.net`,
 * `myhsm.managedhsm.azure.net`, `127.0.0.1:8443`). Returns the normalised host, or a reason.
 */
export function parseVaultHost(value: string): { ok: true; host: string } | { ok: false; reason: string } {
  if (/^[a-z][a-z0-9+.-]*:/i.test(value) && !HOST_RE.test(value)) {
    const bare = /^[a-z]+:\/\/([^/]*)/i.exec(value)?.[1];
    const hint = bare ? `; write the host only, e.g. ${quote(bare.toLowerCase())}` : '';
    return { ok: false, reason: `${quote(value)} is not a host name${hint}` };
  }
  if (!HOST_RE.test(value)) return { ok: false, reason: `${quote(value)} is not a host name` };
  const host = normaliseHost(value, 'https');
  if (host === undefined) return { ok: false, reason: `${quote(value)} has an invalid port` };
  return { ok: true, host };
}

/** Lower-cases the host and drops the scheme's default port. Undefined if the port is out of range. */
function normaliseHost(hostWithPort: string, scheme: 'https' | 'http'): string | undefined {
  const lower = hostWithPort.toLowerCase();
  const colon = lower.lastIndexOf(':');
  if (colon < 0) return lower;
  const port = Number(lower.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const name = lower.slice(0, colon);
  return port === (scheme === 'https' ? 443 : 80) ? name : `${name}:${port}`;
}

/** Plain http is only accepted for loopback (a local Key Vault stand-in); never for a real vault. */
function isLoopbackHost(host: string): boolean {
  const name = host.replace(/:[0-9]+$/, '');
  return name === 'localhost' || /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(name);
}

/** The vault host of a Key Vault key id, or undefined for a local kid. */
export function vaultHostOf(keyId: KeyId): string | undefined {
  return keyId.kind === 'keyVault' ? keyId.host : undefined;
}

/** Quotes untrusted input for an error message, shortened so that a huge id cannot flood logs. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}
