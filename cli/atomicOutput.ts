/**
 * All-or-nothing output files. A command writes to hidden temporary files beside its targets and renames them
 * into place only when everything succeeded, so a failure (wrong key, tampered input, full disk, Ctrl-C) never
 * leaves a partial or unauthenticated output behind, and never clobbers an existing file with one.
 */
import { randomBytes } from 'node:crypto';
import { rename, unlink } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Temporary files not yet committed or discarded, so a signal handler can remove them. */
const liveTempFiles = new Set<string>();

export interface OutputTarget {
  /** Where the file must end up. */
  readonly path: string;
  /** File mode for a newly created output (decrypted plaintext is created owner-only). */
  readonly mode?: number;
}

export interface TempOutput {
  readonly target: string;
  /** Create this path (exclusively, flag 'wx') and write the content to it. */
  readonly tempPath: string;
  readonly mode: number;
}

/**
 * Runs `work` with one temporary path per target, then renames them all into place. If `work` or a rename
 * fails, every temporary file and every already-renamed target of this call is removed, and the error rethrown.
 */
export async function writeAtomically<T>(
  targets: readonly OutputTarget[],
  work: (outputs: readonly TempOutput[]) => Promise<T>,
): Promise<T> {
  const outputs = targets.map((t) => ({ target: t.path, tempPath: tempPathFor(t.path), mode: t.mode ?? 0o666 }));
  for (const o of outputs) liveTempFiles.add(o.tempPath);
  const committed: string[] = [];
  try {
    const result = await work(outputs);
    for (const o of outputs) {
      await rename(o.tempPath, o.target);
      liveTempFiles.delete(o.tempPath);
      committed.push(o.target);
    }
    return result;
  } catch (e) {
    await Promise.all([...outputs.map((o) => removeQuietly(o.tempPath)), ...committed.map(removeQuietly)]);
    for (const o of outputs) liveTempFiles.delete(o.tempPath);
    throw e;
  }
}

/** Synchronously removes every uncommitted temporary file (for SIGINT/SIGTERM handlers). */
export function removeLiveTempFilesSync(): void {
  for (const path of liveTempFiles) {
    try {
      unlinkSync(path);
    } catch {
      // already gone or never created
    }
  }
  liveTempFiles.clear();
}

function tempPathFor(target: string): string {
  // Same directory as the target, so the final rename is atomic (same file system).
  return join(dirname(target), `.${basename(target)}.${process.pid}-${randomBytes(6).toString('hex')}.cse-tmp`);
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch {
    // never created, or already renamed away
  }
}
