/**
 * App settings, as Core Tools provides them: the process environment first, then the `Values` of
 * `local.settings.json` for names the environment does not set. Values are strings; the app reads them through
 * `process.env`, exactly as it does in Azure (where app settings are environment variables).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostStartError } from './errors';

export type Settings = Readonly<Record<string, string | undefined>>;

/** Reads `<root>/local.settings.json` `Values` (an absent file means none). */
export function readLocalSettings(root: string): Record<string, string> {
  const file = join(root, 'local.settings.json');
  if (!existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new HostStartError(`${file} is not valid JSON: ${(cause as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new HostStartError(`${file} must hold a JSON object.`);
  const { IsEncrypted, Values } = parsed as { IsEncrypted?: unknown; Values?: unknown };
  if (IsEncrypted === true) {
    throw new HostStartError(
      `${file} has "IsEncrypted": true; the local host cannot decrypt it (Core Tools encrypts with a machine key). ` +
        'Write the values in plain text and set "IsEncrypted": false.',
    );
  }
  if (Values === undefined) return {};
  if (typeof Values !== 'object' || Values === null || Array.isArray(Values)) {
    throw new HostStartError(`${file}: "Values" must be an object of setting names to strings.`);
  }
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(Values)) {
    // Core Tools accepts numbers and booleans and passes them on as text.
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      values[name] = String(value);
    } else {
      throw new HostStartError(`${file}: Values.${name} must be a string.`);
    }
  }
  return values;
}

/**
 * Copies `values` into `env` for every name `env` does not already define (the environment wins). Returns the
 * names that were taken from the file.
 */
export function applyLocalSettings(env: NodeJS.ProcessEnv, values: Record<string, string>): string[] {
  const applied: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (env[name] === undefined) {
      env[name] = value;
      applied.push(name);
    }
  }
  return applied;
}

/** A setting counts as configured when it is set to something other than blanks (the sample file has ""). */
export function isConfigured(settings: Settings, name: string): boolean {
  return (settings[name] ?? '').trim() !== '';
}

const EXPRESSION = /%([^%]*)%/g;

/**
 * Resolves `%SettingName%` binding expressions in `value`, as the Functions host does for trigger and binding
 * options (`queueName: '%CSE_INGEST_QUEUE%'`). A name that is not set fails with a message naming it and where
 * it was used. `%%` is not an escape in the host either, so it is an error too.
 */
export function resolveBindingExpression(value: string, settings: Settings, where: string): string {
  return value.replace(EXPRESSION, (_match, name: string) => {
    if (name === '') throw new HostStartError(`${where}: '%%' is not a valid binding expression in "${value}".`);
    const resolved = settings[name];
    if (resolved === undefined || resolved === '') {
      throw new HostStartError(
        `${where} uses the app setting '%${name}%', which is not set. Set ${name} in the environment or in ` +
          'local.settings.json "Values".',
      );
    }
    return resolved;
  });
}

/** Resolves binding expressions in every string option of a binding (not in its type, direction or name). */
export function resolveBindingOptions<T extends Record<string, unknown>>(
  binding: T,
  settings: Settings,
  where: string,
): T {
  const out: Record<string, unknown> = { ...binding };
  for (const [key, value] of Object.entries(binding)) {
    if (typeof value === 'string' && key !== 'type' && key !== 'direction' && key !== 'name') {
      out[key] = resolveBindingExpression(value, settings, `${where} (${key})`);
    }
  }
  return out as T;
}
