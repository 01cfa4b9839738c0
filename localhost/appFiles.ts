/**
 * The app's entry files: package.json `main`, a glob in the v4 model (`dist/functions/*.js`,
 * `dist/src/{index.js,functions/*.js}`), resolved against the app root as the Node.js worker does. Supports
 * `*`, `?`, `**` and `{a,b}`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { HostStartError } from './errors';

/** package.json `main` of the app root. */
export function packageMain(root: string): string {
  const file = join(root, 'package.json');
  if (!existsSync(file)) throw new HostStartError(`No package.json in ${root}: its "main" names the app's files.`);
  const main = (JSON.parse(readFileSync(file, 'utf8')) as { main?: unknown }).main;
  if (typeof main !== 'string' || main.trim() === '') {
    throw new HostStartError(
      `${file} has no "main"; the v4 model loads the files it names (e.g. "dist/functions/*.js").`,
    );
  }
  return main;
}

/** Files matching `pattern` (relative to `root` unless absolute), sorted, or a HostStartError if none. */
export function resolveAppFiles(root: string, pattern: string): string[] {
  const files = new Set<string>();
  for (const expanded of expandBraces(pattern)) {
    const absolute = isAbsolute(expanded) ? expanded : resolve(root, expanded);
    for (const file of matchGlob(absolute)) files.add(file);
  }
  if (files.size === 0) {
    throw new HostStartError(
      `No files match "${pattern}" (package.json "main", relative to ${root}). Did the build run (npm run build)?`,
    );
  }
  return [...files].sort();
}

export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  for (let i = open; i < pattern.length; i++) {
    if (pattern[i] === '{') depth++;
    else if (pattern[i] === '}' && --depth === 0) {
      const inner = pattern.slice(open + 1, i);
      const options: string[] = [];
      let level = 0;
      let start = 0;
      for (let j = 0; j < inner.length; j++) {
        if (inner[j] === '{') level++;
        else if (inner[j] === '}') level--;
        else if (inner[j] === ',' && level === 0) {
          options.push(inner.slice(start, j));
          start = j + 1;
        }
      }
      options.push(inner.slice(start));
      const before = pattern.slice(0, open);
      const after = pattern.slice(i + 1);
      return options.flatMap((o) => expandBraces(before + o + after));
    }
  }
  return [pattern];
}

function segmentRegExp(segment: string): RegExp {
  const body = segment
    .replace(/[.+^$()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

function matchGlob(absolute: string): string[] {
  const parts = absolute.split(sep).filter((p, i) => p !== '' || i === 0);
  // The literal prefix is where the walk starts.
  let base = parts[0] === '' ? sep : (parts[0] ?? sep);
  let i = 1;
  while (i < parts.length && !/[*?]/.test(parts[i] ?? '')) {
    base = join(base, parts[i] ?? '');
    i++;
  }
  if (i === parts.length) return existsSync(base) && statSync(base).isFile() ? [base] : [];
  const rest = parts.slice(i);
  const out: string[] = [];
  walk(base, rest, out);
  return out;
}

function walk(dir: string, rest: string[], out: string[]): void {
  const [segment, ...tail] = rest;
  if (segment === undefined) return;
  let entries: { name: string; isDirectory(): boolean; isFile(): boolean }[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  if (segment === '**') {
    walk(dir, tail, out); // zero directories
    for (const e of entries) if (e.isDirectory() && e.name !== 'node_modules') walk(join(dir, e.name), rest, out);
    return;
  }
  const re = segmentRegExp(segment);
  for (const e of entries) {
    if (!re.test(e.name)) continue;
    const full = join(dir, e.name);
    if (tail.length === 0) {
      if (e.isFile()) out.push(full);
    } else if (e.isDirectory()) walk(full, tail, out);
  }
}

/** A path for log lines: relative to the root when inside it. */
export function displayPath(root: string, file: string): string {
  const rel = relative(root, file);
  return rel.startsWith('..') ? file : rel;
}
