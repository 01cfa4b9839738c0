/**
 * The development key ring: when no key is configured (`CSE_KEY_ID` unset), `npm start` must still be able to
 * encrypt, so the host creates one local A256KW key in a git-ignored JWK Set file on first start and points the
 * app at it (`CSE_LOCAL_KEYS` = the file, `CSE_KEY_ID` = its kid). The key never appears in the log.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HostStartError } from './errors';

export const DEV_KEY_ID = 'local:dev-1';

export interface DevelopmentKeyRing {
  readonly file: string;
  readonly keyId: string;
  /** True when this start created the file. */
  readonly created: boolean;
}

export function devKeyRingPath(root: string): string {
  return join(root, '.local', 'dev-keys.json');
}

/** Loads the development key ring under `root`, creating it (one fresh 256-bit key) if it does not exist. */
export function ensureDevelopmentKeyRing(root: string): DevelopmentKeyRing {
  const file = devKeyRingPath(root);
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const jwks = { keys: [{ kid: DEV_KEY_ID, kty: 'oct', alg: 'A256KW', k: randomBytes(32).toString('base64url') }] };
    // 'wx': never overwrite a key ring another start created meanwhile (data written with it needs it).
    writeFileSync(file, JSON.stringify(jwks, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    return { file, keyId: DEV_KEY_ID, created: true };
  }
  return { file, keyId: readKeyId(file), created: false };
}

function readKeyId(file: string): string {
  let jwks: unknown;
  try {
    jwks = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new HostStartError(`The development key ring ${file} is not valid JSON; fix or move it (never print it).`);
  }
  const keys = (jwks as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new HostStartError(`The development key ring ${file} has no "keys".`);
  }
  const kids = keys.map((k: { kid?: unknown }) => k?.kid).filter((kid): kid is string => typeof kid === 'string');
  const kid = kids.includes(DEV_KEY_ID) ? DEV_KEY_ID : kids[0];
  if (kid === undefined) throw new HostStartError(`The keys in the development key ring ${file} have no "kid".`);
  return kid;
}
