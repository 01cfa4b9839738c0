/**
 * Runs the compiled `cse` in a child process, exactly as an operator would, and checks the contract that holds
 * for every run: nothing on stdout/stderr ever contains key material, and a failure is ONE line on stderr.
 *
 * The CLI module is located relative to this compiled file (`<outDir>/test/cli` -> `<outDir>/cli/cse.js`), so the
 * tests work from any outDir; bin/cse.js (which requires ../dist/cli/cse.js) is exercised separately.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../cli/cse';
import { vectorJwkSetJson } from '../helpers/vectors';

export const CLI_MODULE = join(__dirname, '..', '..', 'cli', 'cse.js');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** JWK members holding secret material. */
const SECRET_MEMBERS = ['k', 'd', 'p', 'q', 'dp', 'dq', 'qi'];

/** Every secret value of every key file a test wrote through writeKeyFile; checked against every output. */
const secrets = new Set<string>();

export function secretValuesOf(jwksJson: string): string[] {
  const doc = JSON.parse(jwksJson) as { keys: Array<Record<string, unknown>> };
  return doc.keys.flatMap((jwk) => SECRET_MEMBERS.map((m) => jwk[m]).filter((v): v is string => typeof v === 'string'));
}

/** Writes a JWK Set file and registers its secrets for the no-key-material check. */
export function writeKeyFile(path: string, jwksJson: string): string {
  for (const s of secretValuesOf(jwksJson)) secrets.add(s);
  writeFileSync(path, jwksJson);
  return path;
}

/** The vector KEKs (oct `local:kek-1`, RSA `local:rsa-1`) as a key file in `dir`. */
export function writeVectorKeyFile(dir: string): string {
  return writeKeyFile(join(dir, 'keys.json'), vectorJwkSetJson());
}

export function registerSecret(value: string): void {
  secrets.add(value);
}

export async function runCse(args: readonly string[], cliModule: string = CLI_MODULE): Promise<CliResult> {
  const child = spawn(process.execPath, [cliModule, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  assertNoKeyMaterial({ code, stdout, stderr });
  return { code, stdout, stderr };
}

/**
 * Runs `main` of the same compiled CLI in this process (for argument-parsing matrices where starting a
 * process per case would only add time; the process-level contract is covered by runCse).
 */
export async function runCseInProcess(args: readonly string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (l) => (stdout += `${l}\n`), err: (l) => (stderr += `${l}\n`) });
  assertNoKeyMaterial({ code, stdout, stderr });
  return { code, stdout, stderr };
}

export function assertNoKeyMaterial(result: CliResult): void {
  for (const secret of secrets) {
    // also a decent-length prefix, in case something truncated the value
    const probe = secret.length > 24 ? secret.slice(0, 24) : secret;
    assert.ok(!result.stdout.includes(probe), 'key material on stdout');
    assert.ok(!result.stderr.includes(probe), 'key material on stderr');
  }
}

/** Success: exit 0, nothing on stderr. */
export function assertSuccess(result: CliResult): void {
  assert.equal(result.code, 0, `expected success, got ${result.code}: ${result.stderr}`);
  assert.equal(result.stderr, '');
}

/** Failure: the expected exit code, nothing on stdout, exactly one line on stderr matching `reason`. */
export function assertFailure(result: CliResult, exitCode: 1 | 2, reason: RegExp): void {
  assert.equal(result.code, exitCode, `expected exit ${exitCode}, got ${result.code}: ${result.stderr}`);
  assert.equal(result.stdout, '');
  assert.ok(result.stderr.endsWith('\n'), 'stderr ends with a newline');
  const lines = result.stderr.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${JSON.stringify(result.stderr)}`);
  assert.match(lines[0]!, reason);
}

/** Files in `dir` (to check that a failed command left nothing, not even a temporary file). */
export function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

export function makeTempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), `cse-cli-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
