import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The project root, where fixtures, infra/ and package.json live. Tests run from the root (scripts/run-tests.js
 * sets the cwd), and compiled output may sit in any outDir, so the root is the cwd, checked.
 */
export function projectRoot(): string {
  const root = process.env.CSE_PROJECT_ROOT ?? process.cwd();
  const pkg = join(root, 'package.json');
  if (!existsSync(pkg) || JSON.parse(readFileSync(pkg, 'utf8')).name !== 'azure-cse-functions') {
    throw new Error(`Run tests from the project root (cwd is ${root})`);
  }
  return root;
}

/** A file under test/fixtures (vectors copied from ../shared/vectors live in test/fixtures/vectors). */
export function fixturePath(...parts: string[]): string {
  return join(projectRoot(), 'test', 'fixtures', ...parts);
}
