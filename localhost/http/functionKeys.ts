/**
 * Function keys. Core Tools does not check keys; the local host checks them only when keys are configured:
 *   LOCALHOST_FUNCTION_KEYS  comma-separated keys accepted for authLevel "function"
 *   LOCALHOST_MASTER_KEY     a key accepted for authLevel "function" and "admin"
 * A key is sent as the `x-functions-key` header or the `code` query parameter, as in Azure. authLevel
 * "anonymous" never needs one.
 */
import { timingSafeEqual } from 'node:crypto';
import { HostStartError } from '../errors';
import type { Settings } from '../settings';

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export interface FunctionKeys {
  readonly functionKeys: readonly string[];
  readonly masterKey: string | undefined;
}

/** The configured keys, or undefined when none are (keys are then not checked, like Core Tools). */
export function readFunctionKeys(settings: Settings): FunctionKeys | undefined {
  const functionKeys = (settings.LOCALHOST_FUNCTION_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  const masterKey = (settings.LOCALHOST_MASTER_KEY ?? '').trim() || undefined;
  if (functionKeys.length === 0 && masterKey === undefined) return undefined;
  return { functionKeys, masterKey };
}

export function parseAuthLevel(value: unknown, functionName: string): AuthLevel {
  const level = typeof value === 'string' ? value.toLowerCase() : 'anonymous';
  if (level === 'anonymous' || level === 'function' || level === 'admin') return level;
  // 'system' and 'user' exist in the host for special cases; the local host treats them as admin.
  if (level === 'system' || level === 'user') return 'admin';
  throw new HostStartError(`Function '${functionName}': unknown authLevel "${String(value)}".`);
}

/** Whether a request carrying `presented` (header or ?code=) may call a function of `level`. */
export function isAuthorized(level: AuthLevel, presented: string | undefined, keys: FunctionKeys | undefined): boolean {
  if (level === 'anonymous' || keys === undefined) return true;
  if (presented === undefined || presented === '') return false;
  const accepted = level === 'admin' ? [] : [...keys.functionKeys];
  if (keys.masterKey !== undefined) accepted.push(keys.masterKey);
  // Check every key (no early exit) in constant time per key.
  let ok = false;
  for (const key of accepted) ok = constantTimeEqual(key, presented) || ok;
  return ok;
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
