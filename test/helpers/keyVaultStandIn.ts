/**
 * A small, faithful stand-in for the Azure Key Vault keys REST API (no emulator is installable here, ECOSYSTEM.md
 * §4.1), served over plain HTTP on a free loopback port, for the real `@azure/keyvault-keys` clients.
 *
 * What it does like Key Vault (ECOSYSTEM.md §4.2):
 *  - challenge authentication: a request without `Authorization` gets 401 with
 *    `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>", resource="<resource>"`
 *    (the SDK's first request per client is sent without body or token, then re-sent with both);
 *  - keys with versions: create, get (versioned and current), list versions (paged), rotate, update attributes;
 *  - wrapkey / unwrapkey / encrypt / decrypt with RSA-OAEP, RSA-OAEP-256 (RSA keys) and A128/192/256KW
 *    (`oct-HSM` keys, as in Managed HSM); base64url values; `{ kid, value }` results;
 *  - the service's validity rules: a disabled key refuses everything; an expired or not-yet-valid key refuses
 *    wrap/encrypt but still unwraps/decrypts (the service allows that; the JS SDK's client-side check does not);
 *    `key_ops` is enforced;
 *  - errors as `{ "error": { "code", "message" } }` (404 KeyNotFound, 400 BadParameter, 403 Forbidden,
 *    429 Throttled with `Retry-After`).
 *
 * For tests: create keys and versions directly, change attributes, inject 429 storms, and inspect a log of every
 * request (operation, whether it carried a token, body length, status) and the number of TCP connections.
 *
 *   const kv = await KeyVaultStandIn.start();
 *   const { kid } = kv.createKey('kek');
 *   const client = new KeyClient(kv.url, testCredential().credential, KeyVaultStandIn.clientOptions);
 *   ...
 *   await kv.close();
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { fixturePath } from './paths';

export type StandInKeyType = 'RSA' | 'RSA-HSM' | 'oct-HSM' | 'EC';

export interface StandInKeyOptions {
  kty?: StandInKeyType;
  /** RSA modulus bits (default 2048) or AES key bits for oct-HSM (default 256). */
  size?: number;
  /** Default: wrapKey, unwrapKey, encrypt, decrypt. */
  keyOps?: string[];
  enabled?: boolean;
  notBefore?: Date;
  expiresOn?: Date;
}

export interface StandInAttributes {
  enabled?: boolean;
  /** null clears the attribute. */
  notBefore?: Date | null;
  expiresOn?: Date | null;
  keyOps?: string[];
}

export interface RecordedRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** getKey, createKey, rotateKey, updateKey, listVersions, listKeys, wrapKey, unwrapKey, encrypt, decrypt, unknown */
  readonly operation: string;
  readonly keyName: string | undefined;
  /** The version in the path ('' for "current"). */
  readonly version: string | undefined;
  readonly apiVersion: string | null;
  readonly authorized: boolean;
  readonly bodyLength: number;
  /** `alg` of a key operation body. */
  readonly algorithm: string | undefined;
  status: number;
  readonly at: number;
}

export interface ThrottleRule {
  /** Throttle this many matching (authorized) requests, then stop. Default: unlimited within `durationMs`. */
  requests?: number;
  /** Throttle matching requests for this long. Default: until `requests` is used up or `clearThrottle()`. */
  durationMs?: number;
  /** Retry-After seconds to send; null sends no Retry-After header. Default 1. */
  retryAfterSeconds?: number | null;
  /** Only these operations (RecordedRequest.operation). Default: all. */
  operations?: string[];
}

interface KeyVersion {
  readonly version: string;
  readonly kty: StandInKeyType;
  readonly size: number;
  readonly privateKey?: KeyObject;
  readonly publicJwk?: { n: string; e: string };
  readonly secret?: Buffer;
  keyOps: string[];
  enabled: boolean;
  notBefore: number | undefined;
  expiresOn: number | undefined;
  readonly created: number;
  updated: number;
}

interface StoredKey {
  readonly name: string;
  readonly versions: Map<string, KeyVersion>;
  current: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_KEY_OPS = ['wrapKey', 'unwrapKey', 'encrypt', 'decrypt'];
const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

export class KeyVaultStandIn {
  /** Client options a KeyClient / CryptographyClient needs to talk to the stand-in (never the default). */
  static readonly clientOptions = { disableChallengeResourceVerification: true, allowInsecureConnection: true };

  readonly requests: RecordedRequest[] = [];
  readonly #server: Server;
  readonly #keys = new Map<string, StoredKey>();
  readonly #sockets = new Set<Socket>();
  readonly #resource: string;
  readonly #tenantId: string;
  readonly #acceptToken: (token: string) => boolean;
  #connections = 0;
  #throttle: (ThrottleRule & { until: number; remaining: number }) | undefined;
  #url = '';

  private constructor(options: StandInOptions) {
    this.#resource = options.resource ?? 'https://vault.azure.net';
    this.#tenantId = options.tenantId ?? '72f988bf-86f1-41af-91ab-2d7cd011db47';
    this.#acceptToken = options.acceptToken ?? ((token) => token.length > 0);
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket: Socket) => {
      this.#connections += 1;
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts on a free port of 127.0.0.1. */
  static async start(options: StandInOptions = {}): Promise<KeyVaultStandIn> {
    const standIn = new KeyVaultStandIn(options);
    await new Promise<void>((resolve, reject) => {
      standIn.#server.once('error', reject);
      standIn.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = standIn.#server.address() as AddressInfo;
    standIn.#url = `http://127.0.0.1:${port}`;
    return standIn;
  }

  /** `http://127.0.0.1:<port>`: the vault URL. */
  get url(): string {
    return this.#url;
  }

  /** `127.0.0.1:<port>`: the vault host as CSE_ALLOWED_KEY_VAULTS lists it. */
  get host(): string {
    return this.#url.replace(/^http:\/\//, '');
  }

  /** TCP connections accepted so far. */
  get connectionCount(): number {
    return this.#connections;
  }

  keyId(name: string, version?: string): string {
    return `${this.#url}/keys/${name}${version === undefined ? '' : `/${version}`}`;
  }

  /** Creates a key (or a new version of an existing one) and makes it current. */
  createKey(name: string, options: StandInKeyOptions = {}): { kid: string; version: string } {
    const version = this.#newVersion(options);
    let key = this.#keys.get(name);
    if (key === undefined) {
      key = { name, versions: new Map(), current: version.version };
      this.#keys.set(name, key);
    }
    key.versions.set(version.version, version);
    key.current = version.version;
    return { kid: this.keyId(name, version.version), version: version.version };
  }

  /** A new current version with the same type, size and key_ops (what Key Vault's rotate does). */
  rotateKey(
    name: string,
    options: Pick<StandInKeyOptions, 'expiresOn' | 'notBefore'> = {},
  ): {
    kid: string;
    version: string;
  } {
    const key = this.#keys.get(name);
    if (key === undefined) throw new Error(`no key ${name}`);
    const current = key.versions.get(key.current) as KeyVersion;
    return this.createKey(name, { kty: current.kty, size: current.size, keyOps: [...current.keyOps], ...options });
  }

  currentVersion(name: string): string {
    const key = this.#keys.get(name);
    if (key === undefined) throw new Error(`no key ${name}`);
    return key.current;
  }

  setAttributes(name: string, version: string, attributes: StandInAttributes): void {
    const v = this.#keys.get(name)?.versions.get(version);
    if (v === undefined) throw new Error(`no key ${name}/${version}`);
    if (attributes.enabled !== undefined) v.enabled = attributes.enabled;
    if (attributes.notBefore !== undefined) v.notBefore = attributes.notBefore?.getTime();
    if (attributes.expiresOn !== undefined) v.expiresOn = attributes.expiresOn?.getTime();
    if (attributes.keyOps !== undefined) v.keyOps = [...attributes.keyOps];
    v.updated = Date.now();
  }

  /** Answers matching authorized requests with 429 (a "storm") until the rule is used up or cleared. */
  throttle(rule: ThrottleRule = {}): void {
    this.#throttle = {
      ...rule,
      until: rule.durationMs === undefined ? Infinity : Date.now() + rule.durationMs,
      remaining: rule.requests ?? Infinity,
    };
  }

  clearThrottle(): void {
    this.#throttle = undefined;
  }

  /** Authorized requests (those that reached the key logic) for an operation, optionally only successful ones. */
  operations(operation: string, options: { status?: number } = {}): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.operation === operation && r.authorized && (options.status === undefined || r.status === options.status),
    );
  }

  clearLog(): void {
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  // -------------------------------------------------------------------------------------------------------------
  // HTTP

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', this.#url);
    const route = routeOf(req.method ?? 'GET', url.pathname);
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined;
    const authorized = token !== undefined && this.#acceptToken(token);
    let algorithm: string | undefined;
    try {
      algorithm = body.length > 0 ? (JSON.parse(body.toString('utf8')) as { alg?: string }).alg : undefined;
    } catch {
      algorithm = undefined;
    }
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      operation: route.operation,
      keyName: route.name,
      version: route.version,
      apiVersion: url.searchParams.get('api-version'),
      authorized,
      bodyLength: body.length,
      algorithm,
      status: 0,
      at: Date.now(),
    };
    this.requests.push(record);

    const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      const text = JSON.stringify(payload);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(text);
    };

    if (!authorized) {
      const challenge = `Bearer authorization="https://login.microsoftonline.com/${this.#tenantId}", resource="${this.#resource}"`;
      send(
        401,
        { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
        {
          'www-authenticate': challenge,
        },
      );
      return;
    }
    if (record.apiVersion === null) {
      send(400, { error: { code: 'BadParameter', message: 'The api-version query parameter is required.' } });
      return;
    }
    const retryAfter = this.#takeThrottle(route.operation);
    if (retryAfter !== undefined) {
      send(
        429,
        { error: { code: 'Throttled', message: 'Request was not processed because too many requests were received.' } },
        retryAfter === null ? {} : { 'retry-after': String(retryAfter) },
      );
      return;
    }
    try {
      const json = body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
      send(200, this.#dispatch(route, json, url));
    } catch (error) {
      if (error instanceof HttpError) send(error.status, { error: { code: error.code, message: error.message } });
      else send(500, { error: { code: 'InternalError', message: String(error) } });
    }
  }

  #takeThrottle(operation: string): number | null | undefined {
    const rule = this.#throttle;
    if (rule === undefined) return undefined;
    if (Date.now() >= rule.until || rule.remaining <= 0) {
      this.#throttle = undefined;
      return undefined;
    }
    if (rule.operations !== undefined && !rule.operations.includes(operation)) return undefined;
    rule.remaining -= 1;
    return rule.retryAfterSeconds === undefined ? 1 : rule.retryAfterSeconds;
  }

  #dispatch(route: Route, body: Record<string, unknown>, url: URL): unknown {
    const name = route.name ?? '';
    switch (route.operation) {
      case 'createKey': {
        const attributes = (body['attributes'] ?? {}) as Record<string, unknown>;
        const { version } = this.createKey(name, {
          kty: (body['kty'] as StandInKeyType | undefined) ?? 'RSA',
          size: (body['key_size'] as number | undefined) ?? undefined,
          keyOps: (body['key_ops'] as string[] | undefined) ?? undefined,
          enabled: (attributes['enabled'] as boolean | undefined) ?? true,
          notBefore: secondsToDate(attributes['nbf']),
          expiresOn: secondsToDate(attributes['exp']),
        });
        return this.#bundle(name, this.#version(name, version));
      }
      case 'rotateKey': {
        this.#stored(name);
        const { version } = this.rotateKey(name);
        return this.#bundle(name, this.#version(name, version));
      }
      case 'getKey':
        return this.#bundle(name, this.#version(name, route.version));
      case 'updateKey': {
        const v = this.#version(name, route.version);
        const attributes = (body['attributes'] ?? {}) as Record<string, unknown>;
        this.setAttributes(name, v.version, {
          enabled: attributes['enabled'] as boolean | undefined,
          notBefore: 'nbf' in attributes ? (secondsToDate(attributes['nbf']) ?? null) : undefined,
          expiresOn: 'exp' in attributes ? (secondsToDate(attributes['exp']) ?? null) : undefined,
          keyOps: body['key_ops'] as string[] | undefined,
        });
        return this.#bundle(name, v);
      }
      case 'listVersions':
        return this.#listVersions(name, url);
      case 'listKeys':
        return {
          value: [...this.#keys.values()].map((k) => ({
            kid: this.keyId(k.name),
            attributes: attributesJson(this.#version(k.name, k.current)),
          })),
          nextLink: null,
        };
      case 'wrapKey':
      case 'unwrapKey':
      case 'encrypt':
      case 'decrypt':
        return this.#keyOperation(route.operation, name, this.#version(name, route.version), body);
      default:
        throw new HttpError(404, 'NotFound', `The requested resource ${url.pathname} was not found.`);
    }
  }

  #listVersions(name: string, url: URL): unknown {
    const key = this.#stored(name);
    const all = [...key.versions.values()];
    const max = Number(url.searchParams.get('maxresults') ?? 25);
    const skip = Number(url.searchParams.get('$skiptoken') ?? 0);
    const page = all.slice(skip, skip + max);
    const next = skip + max < all.length ? skip + max : undefined;
    const nextLink =
      next === undefined
        ? null
        : `${this.#url}/keys/${name}/versions?api-version=${url.searchParams.get('api-version')}&maxresults=${max}&$skiptoken=${next}`;
    return {
      value: page.map((v) => ({ kid: this.keyId(name, v.version), attributes: attributesJson(v) })),
      nextLink,
    };
  }

  #keyOperation(operation: string, name: string, v: KeyVersion, body: Record<string, unknown>): unknown {
    const permitted = operation === 'wrapKey' || operation === 'encrypt' ? 'protect' : 'unprotect';
    if (!v.enabled) throw new HttpError(403, 'Forbidden', `Operation ${operation} is not allowed on a disabled key.`);
    const now = Date.now();
    if (v.notBefore !== undefined && now < v.notBefore) {
      throw new HttpError(403, 'Forbidden', `Operation ${operation} is not allowed on a key that is not yet valid.`);
    }
    // The service lets expired keys decrypt/unwrap (so data stays readable), but not encrypt/wrap.
    if (permitted === 'protect' && v.expiresOn !== undefined && now > v.expiresOn) {
      throw new HttpError(403, 'Forbidden', `Operation ${operation} is not allowed on an expired key.`);
    }
    if (!v.keyOps.includes(operation)) {
      throw new HttpError(403, 'Forbidden', `Operation ${operation} is not permitted on this key.`);
    }
    const alg = body['alg'];
    const value = typeof body['value'] === 'string' ? Buffer.from(body['value'], 'base64url') : undefined;
    if (typeof alg !== 'string' || value === undefined) {
      throw new HttpError(400, 'BadParameter', 'Property alg and value are required.');
    }
    let result: Buffer;
    try {
      result = permitted === 'protect' ? this.#protect(v, alg, value) : this.#unprotect(v, alg, value);
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw new HttpError(400, 'BadParameter', 'The parameter is incorrect.');
    }
    return { kid: this.keyId(name, v.version), value: result.toString('base64url') };
  }

  #protect(v: KeyVersion, alg: string, value: Buffer): Buffer {
    if (v.kty === 'RSA' || v.kty === 'RSA-HSM') {
      return publicEncrypt({ key: v.privateKey as KeyObject, ...rsaPadding(alg) }, value);
    }
    if (v.kty === 'oct-HSM') {
      const cipher = createCipheriv(aesKwCipher(alg, v.size), v.secret as Buffer, AES_KW_IV);
      return Buffer.concat([cipher.update(value), cipher.final()]);
    }
    throw new HttpError(400, 'BadParameter', `Algorithm ${alg} is not supported for key type ${v.kty}.`);
  }

  #unprotect(v: KeyVersion, alg: string, value: Buffer): Buffer {
    if (v.kty === 'RSA' || v.kty === 'RSA-HSM') {
      return privateDecrypt({ key: v.privateKey as KeyObject, ...rsaPadding(alg) }, value);
    }
    if (v.kty === 'oct-HSM') {
      const decipher = createDecipheriv(aesKwCipher(alg, v.size), v.secret as Buffer, AES_KW_IV);
      return Buffer.concat([decipher.update(value), decipher.final()]);
    }
    throw new HttpError(400, 'BadParameter', `Algorithm ${alg} is not supported for key type ${v.kty}.`);
  }

  #stored(name: string): StoredKey {
    const key = this.#keys.get(name);
    if (key === undefined) {
      throw new HttpError(404, 'KeyNotFound', `A key with (name/id) ${name} was not found in this key vault.`);
    }
    return key;
  }

  #version(name: string, version: string | undefined): KeyVersion {
    const key = this.#stored(name);
    const v = key.versions.get(version === undefined || version === '' ? key.current : version);
    if (v === undefined) {
      throw new HttpError(
        404,
        'KeyNotFound',
        `A key with (name/id) ${name}/${version} was not found in this key vault.`,
      );
    }
    return v;
  }

  #bundle(name: string, v: KeyVersion): unknown {
    const key: Record<string, unknown> = { kid: this.keyId(name, v.version), kty: v.kty, key_ops: v.keyOps };
    if (v.publicJwk !== undefined) Object.assign(key, v.publicJwk);
    return { key, attributes: attributesJson(v) };
  }

  #newVersion(options: StandInKeyOptions): KeyVersion {
    const kty = options.kty ?? 'RSA';
    const now = Date.now();
    const common = {
      version: randomBytes(16).toString('hex'),
      kty,
      keyOps: [...(options.keyOps ?? DEFAULT_KEY_OPS)],
      enabled: options.enabled ?? true,
      notBefore: options.notBefore?.getTime(),
      expiresOn: options.expiresOn?.getTime(),
      created: now,
      updated: now,
    };
    if (kty === 'RSA' || kty === 'RSA-HSM') {
      const size = options.size ?? 2048;
      const privateKey = newRsaKey(size);
      const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as { n: string; e: string };
      return { ...common, size, privateKey, publicJwk: { n: jwk.n, e: jwk.e } };
    }
    if (kty === 'oct-HSM') {
      const size = options.size ?? 256;
      return { ...common, size, secret: randomBytes(size / 8) };
    }
    return { ...common, size: options.size ?? 256 };
  }
}

export interface StandInOptions {
  /** The `resource` of the challenge (default https://vault.azure.net; Managed HSM: https://managedhsm.azure.net). */
  resource?: string;
  tenantId?: string;
  /** Which bearer tokens are valid (default: any non-empty). */
  acceptToken?: (token: string) => boolean;
}

/** A token credential for tests that records every scope it was asked for. */
export function testCredential(token = 'stand-in-token'): {
  credential: { getToken(scopes: string | string[]): Promise<{ token: string; expiresOnTimestamp: number }> };
  scopes: string[][];
} {
  const scopes: string[][] = [];
  return {
    scopes,
    credential: {
      async getToken(requested: string | string[]) {
        scopes.push(Array.isArray(requested) ? [...requested] : [requested]);
        return { token, expiresOnTimestamp: Date.now() + 3600_000 };
      },
    },
  };
}

/**
 * RSA keys: generating a 2048-bit key takes 0.1-0.5 s on a busy machine, so the first keys come from a fixture of
 * test-only keys. Every version in the process still gets a key of its own (the index is process-wide), so a
 * wrong-key unwrap fails as it would in Key Vault.
 */
let rsaPool: string[] | undefined;
let rsaPoolNext = 0;

function newRsaKey(size: number): KeyObject {
  if (size === 2048) {
    rsaPool ??= loadRsaPool();
    const der = rsaPool[rsaPoolNext];
    if (der !== undefined) {
      rsaPoolNext += 1;
      return createPrivateKey({ key: Buffer.from(der, 'base64'), format: 'der', type: 'pkcs8' });
    }
  }
  return generateKeyPairSync('rsa', { modulusLength: size }).privateKey;
}

function loadRsaPool(): string[] {
  try {
    const path = fixturePath('keyvault', 'stand-in-rsa-2048.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { keys: string[] }).keys;
  } catch {
    return []; // not run from the project root: generate every key
  }
}

interface Route {
  operation: string;
  name: string | undefined;
  version: string | undefined;
}

function routeOf(method: string, path: string): Route {
  // `/keys/kek/` (the SDK's "current version" form) and `/keys/kek` are the same resource.
  const parts = path.split('/').filter((p) => p !== '');
  if (parts[0] !== 'keys') return { operation: 'unknown', name: undefined, version: undefined };
  const name = parts[1];
  const rest = parts.slice(2);
  if (name === undefined) return { operation: method === 'GET' ? 'listKeys' : 'unknown', name, version: undefined };
  if (rest.length === 0) {
    return { operation: method === 'GET' ? 'getKey' : 'unknown', name, version: '' };
  }
  const [second, third] = rest;
  if (rest.length === 1) {
    if (method === 'POST' && second === 'create') return { operation: 'createKey', name, version: undefined };
    if (method === 'POST' && second === 'rotate') return { operation: 'rotateKey', name, version: undefined };
    if (method === 'GET' && second === 'versions') return { operation: 'listVersions', name, version: undefined };
    if (method === 'GET') return { operation: 'getKey', name, version: second };
    if (method === 'PATCH') return { operation: 'updateKey', name, version: second };
  }
  if (rest.length === 2 && method === 'POST') {
    const operations: Record<string, string> = {
      wrapkey: 'wrapKey',
      unwrapkey: 'unwrapKey',
      encrypt: 'encrypt',
      decrypt: 'decrypt',
    };
    const operation = operations[third ?? ''];
    if (operation !== undefined) return { operation, name, version: second };
  }
  return { operation: 'unknown', name, version: undefined };
}

function rsaPadding(alg: string): { padding: number; oaepHash?: string } {
  if (alg === 'RSA-OAEP') return { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' };
  if (alg === 'RSA-OAEP-256') return { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' };
  throw new HttpError(400, 'BadParameter', `Algorithm ${alg} is not supported for RSA keys.`);
}

function aesKwCipher(alg: string, size: number): string {
  const bits = { A128KW: 128, A192KW: 192, A256KW: 256 }[alg];
  if (bits === undefined)
    throw new HttpError(400, 'BadParameter', `Algorithm ${alg} is not supported for oct-HSM keys.`);
  if (bits !== size) throw new HttpError(400, 'BadParameter', `Algorithm ${alg} does not match the key size ${size}.`);
  return `id-aes${bits}-wrap`;
}

function attributesJson(v: KeyVersion): Record<string, unknown> {
  const attributes: Record<string, unknown> = {
    enabled: v.enabled,
    created: Math.floor(v.created / 1000),
    updated: Math.floor(v.updated / 1000),
    recoveryLevel: 'Recoverable+Purgeable',
    recoverableDays: 90,
    exportable: false,
  };
  if (v.notBefore !== undefined) attributes['nbf'] = Math.floor(v.notBefore / 1000);
  if (v.expiresOn !== undefined) attributes['exp'] = Math.floor(v.expiresOn / 1000);
  return attributes;
}

function secondsToDate(value: unknown): Date | undefined {
  return typeof value === 'number' ? new Date(value * 1000) : undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
