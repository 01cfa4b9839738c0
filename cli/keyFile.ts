/**
 * Loads the `--keys` JWK Set for a command and remembers its secret values so that no output line can ever
 * contain them (see redactSecrets), even if some lower layer put a piece of the file into an error message.
 */
import { readFile } from 'node:fs/promises';
import { CseError } from '../shared/errors';
import type { KeyEncryptionKey, KeyResolver } from '../shared/keys/kek';
import { parseJwkSet } from '../shared/keys/localKeys';

/** JWK members that hold private or secret key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const SECRET_MEMBERS = ['k', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;

const knownSecrets = new Set<string>();

export interface LoadedKeys {
  /** Resolves key ids read from metadata; an id not in the file is CseError 'KeyNotFound'. */
  readonly resolver: KeyResolver;
  /** The key named by `--key-id`; CseError 'KeyNotFound' when the file has no such key. */
  keyForWriting(kid: string): KeyEncryptionKey;
}

export async function loadKeyFile(path: string): Promise<LoadedKeys> {
  const text = await readFile(path, 'utf8');
  rememberSecrets(text, path);
  const ring = parseJwkSet(text, path);
  return {
    resolver: ring, // KeyNotFound for an id the file does not have
    keyForWriting(kid) {
      const key = ring.get(kid);
      if (key === undefined) throw new CseError('KeyNotFound', `key id ${JSON.stringify(kid)} is not in ${path}`);
      return key;
    },
  };
}

/** Replaces every secret value seen in a loaded key file by `[redacted]`. */
export function redactSecrets(line: string): string {
  let out = line;
  for (const secret of knownSecrets) out = out.split(secret).join('[redacted]');
  return out;
}

function rememberSecrets(text: string, path: string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // V8's JSON error quotes part of the input, which here is key material: say only where the problem is.
    throw new CseError('InvalidKey', `${path} is not valid JSON (expected a JWK Set {"keys":[...]})`);
  }
  const keys = typeof doc === 'object' && doc !== null ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys)) return; // parseJwkSet reports the shape problem
  for (const jwk of keys) {
    if (typeof jwk !== 'object' || jwk === null) continue;
    for (const member of SECRET_MEMBERS) {
      const value = (jwk as Record<string, unknown>)[member];
      // Short strings could match innocent text; real key material is far longer than 8 characters.
      if (typeof value === 'string' && value.length >= 8) knownSecrets.add(value);
    }
  }
}
