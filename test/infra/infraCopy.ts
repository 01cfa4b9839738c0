/**
 * Deliberately broken copies of infra/ for tests that prove a check can fail: copy the folder to a temp dir, apply
 * text edits, parse the copy. Each edit's `find` text must occur in its file, so an edit that no longer matches the
 * templates fails loudly instead of silently testing nothing.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../helpers/paths';
import { BicepFile, loadBicepFiles } from './bicep';

export interface Edit {
  /** Path under infra/, e.g. `modules/storage.bicep`. */
  readonly file: string;
  readonly find: string;
  readonly replace: string;
}

export function infraDir(): string {
  return join(projectRoot(), 'infra');
}

export function loadInfra(): BicepFile[] {
  return loadBicepFiles(infraDir());
}

/** Parses a copy of infra/ with `edits` applied (first occurrence of each `find`); the copy is removed after. */
export function loadBrokenInfra(edits: readonly Edit[]): BicepFile[] {
  const dir = mkdtempSync(join(tmpdir(), 'cse-infra-'));
  try {
    cpSync(infraDir(), dir, { recursive: true });
    for (const edit of edits) {
      const path = join(dir, edit.file);
      const text = readFileSync(path, 'utf8');
      assert.ok(
        text.includes(edit.find),
        `stale test edit: ${edit.file} no longer contains ${JSON.stringify(edit.find)}`,
      );
      writeFileSync(path, text.replace(edit.find, edit.replace));
    }
    return loadBicepFiles(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
